"""Workflows: the code-first API, JSON graph versions, one compiled form and the engine.

The code-first API is one import::

    from automate_core.workflows import (
        workflow, event_workflow, step, get_context,
        goto, sleep, wait, wait_for_event, complete, fail, Retry, engine,
    )

Names are resolved on first access, so importing this package while Django loads the apps'
models (the engine needs them) imports nothing else.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automate_core.workflows import engine
    from automate_core.workflows.code import event_workflow, step, workflow
    from automate_core.workflows.compiled import get_context
    from automate_core.workflows.flow import (
        Retry,
        complete,
        fail,
        goto,
        sleep,
        wait,
        wait_for_event,
    )

__all__ = [
    "Retry",
    "complete",
    "engine",
    "event_workflow",
    "fail",
    "get_context",
    "goto",
    "sleep",
    "step",
    "wait",
    "wait_for_event",
    "workflow",
]

_HOMES = {
    "workflow": "code",
    "event_workflow": "code",
    "step": "code",
    "get_context": "compiled",
    "goto": "flow",
    "sleep": "flow",
    "wait": "flow",
    "wait_for_event": "flow",
    "complete": "flow",
    "fail": "flow",
    "Retry": "flow",
}


def __getattr__(name: str) -> Any:
    if name == "engine":
        return import_module(f"{__name__}.engine")
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)
