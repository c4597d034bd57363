"""System checks of the runtime's setup, run by every ``manage.py`` command."""

from __future__ import annotations

from typing import Any

from django.core.checks import CheckMessage, Error, Warning, register
from django.db import DEFAULT_DB_ALIAS, connections


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
