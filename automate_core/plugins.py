"""Plugin registry over Python entry points.

Plugins of a kind live in the entry-point group ``django_automate.<kind>`` (for example
``django_automate.connectors``); built-ins are registered through the same entry points in our
own pyproject.toml, so there is one way to find any plugin.
"""

from __future__ import annotations

from functools import cache
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from django.core.exceptions import ImproperlyConfigured

GROUP_PREFIX = "django_automate."


class PluginNotFound(ImproperlyConfigured):
    """No plugin of that kind and name is installed."""

    def __init__(self, kind: str, name: str, available: list[str]) -> None:
        self.kind, self.name, self.available = kind, name, available
        choices = ", ".join(available) or "none installed"
        super().__init__(
            f"No {kind} plugin named {name!r} (entry-point group '{GROUP_PREFIX}{kind}'). "
            f"Available: {choices}. Install the package that provides it."
        )


@cache
def _entry_points(kind: str) -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP_PREFIX + kind)}


def available(kind: str) -> list[str]:
    """Names of the installed plugins of ``kind``, sorted."""
    return sorted(_entry_points(kind))


def load(kind: str, name: str) -> Any:
    """The object registered as ``name`` in group ``django_automate.<kind>``."""
    found = _entry_points(kind).get(name)
    if found is None:
        raise PluginNotFound(kind, name, available(kind))
    return found.load()


def refresh() -> None:
    """Forget cached entry points (after installing a package at run time, or in tests)."""
    _entry_points.cache_clear()
