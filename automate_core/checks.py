"""System checks of the runtime's setup, run by every ``manage.py`` command."""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping
from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DEFAULT_DB_ALIAS, connections
from django.utils.module_loading import autodiscover_modules

from automate_core.conf import declared_settings


@register()
def postgres_database(**kwargs: Any) -> list[CheckMessage]:
    """The runtime's SQL is Postgres's (docs/decisions/0001-postgres-only.md): refuse to start
    on another database rather than fail at the first job. Reads the configured engine only;
    no connection is opened."""
    vendor = connections[DEFAULT_DB_ALIAS].vendor
    if vendor == "postgresql":
        return []
    return [
        Error(
            f"The default database is {vendor}; Django Automate runs on PostgreSQL only.",
            hint="Unset DATABASE_URL to use the embedded Postgres, or point it at PostgreSQL 16 "
            "with pgvector.",
            id="automate.E001",
        )
    ]


@register()
def private_egress_opened(**kwargs: Any) -> list[CheckMessage]:
    """Opening private addresses to egress (for a local model server, say) lets every tenant's
    workflows reach them: say so at every start, so it is never left on unknowingly."""
    from automate_core.conf import automate_settings

    opened = list(automate_settings.EGRESS_ALLOW_PRIVATE or [])
    if not opened:
        return []
    return [
        Warning(
            f"EGRESS_ALLOW_PRIVATE opens {', '.join(map(str, opened))} to outbound requests: "
            "every tenant's connectors, providers and MCP servers can reach them.",
            hint="Keep it to the one local service you need, and empty in production "
            "(docs/governance.md, Egress policy).",
            id="automate.W002",
        )
    ]


@register()
def unknown_settings_keys(**kwargs: Any) -> list[CheckMessage]:
    """A mistyped key in an ``AUTOMATE*`` dict is ignored and its default silently applies:
    name the key and the closest known one. A whole ``AUTOMATE_*`` dict that no installed app
    reads (a mistyped or uninstalled app's name) is named the same way."""
    autodiscover_modules("conf")  # each app declares its settings object in its conf module
    declared = {app.namespace: app for app in declared_settings()}
    messages: list[CheckMessage] = []
    for namespace, app in sorted(declared.items()):
        for key in sorted(map(str, app.unknown_keys())):
            messages.append(
                Warning(
                    f"{namespace}[{key!r}] is not a setting: it is ignored.",
                    hint=_closest(key, app.defaults),
                    id="automate.W001",
                )
            )
    unread = [
        name
        for name in sorted(dir(settings))
        if name.startswith("AUTOMATE")
        and name not in declared
        and isinstance(getattr(settings, name), Mapping)
    ]
    for name in unread:
        messages.append(
            Warning(
                f"settings.{name} is read by no installed app: it is ignored.",
                hint=_closest(name, declared),
                id="automate.W003",
            )
        )
    return messages


def _closest(word: str, known: Iterable[str]) -> str:
    choices = sorted(known)
    match = difflib.get_close_matches(word, choices, n=1)
    return f"Did you mean {match[0]!r}?" if match else f"Known: {', '.join(choices)}."
