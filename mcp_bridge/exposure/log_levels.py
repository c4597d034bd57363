"""``logging/setLevel`` on ``/mcp``: the level a client asked for, and whether a
``notifications/message`` at some level reaches it.

``/mcp`` is stateless HTTP (each request its own connection), so the level is kept per caller
(the API key, or a public exposure's client address) in the cache for ``LEVEL_TTL_SECONDS``
and applies to that caller's later requests. Until a caller sets one, it gets no messages.
On 2026-07-28+ connections ``logging/setLevel`` is gone: the SDK gates messages by the
request's own ``_meta`` opt-in instead, and the kept level is not consulted.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.core.cache import cache

if TYPE_CHECKING:
    from mcp_bridge.exposure.catalog import Caller

#: RFC 5424 severities as MCP names them, least severe first.
LEVELS = ("debug", "info", "notice", "warning", "error", "critical", "alert", "emergency")
LEVEL_TTL_SECONDS = 24 * 3600


def _cache_key(caller: Caller) -> str:
    return f"mcp.server.log_level:{caller.identity}"


def set_level(caller: Caller, level: str) -> None:
    """Keep ``level`` (one of :data:`LEVELS`) for ``caller``'s later requests."""
    if level not in LEVELS:
        raise ValueError(f"unknown log level {level!r}")
    cache.set(_cache_key(caller), level, LEVEL_TTL_SECONDS)


def level_of(caller: Caller) -> str | None:
    """The level ``caller`` set, or None (it asked for no messages)."""
    level = cache.get(_cache_key(caller))
    return level if level in LEVELS else None


def admits(threshold: str | None, level: str) -> bool:
    """Whether a message at ``level`` is sent to a caller that set ``threshold``."""
    return threshold is not None and LEVELS.index(level) >= LEVELS.index(threshold)
