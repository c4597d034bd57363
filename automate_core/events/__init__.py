"""Events: what happened, stored once, matched by rules to workflows.

Model-declared events and their handlers are one import::

    from automate_core.events import (
        EventDefinition, on_event, on_event_created, on_event_cancelled, Event,
    )

Names are resolved on first access: ``Event`` is a model, importable only once apps are loaded.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automate_core.events.definitions import (
        EventDefinition,
        on_event,
        on_event_cancelled,
        on_event_created,
    )
    from automate_core.events.models import Event

__all__ = ["Event", "EventDefinition", "on_event", "on_event_cancelled", "on_event_created"]

_HOMES = {
    "Event": "models",
    "EventDefinition": "definitions",
    "on_event": "definitions",
    "on_event_created": "definitions",
    "on_event_cancelled": "definitions",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
