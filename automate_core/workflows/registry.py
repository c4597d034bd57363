"""Code-first workflows registered by name when their module is imported."""

from __future__ import annotations

from automate_core.workflows.compiled import CompiledWorkflow

_workflows: dict[str, CompiledWorkflow] = {}


def register(compiled: CompiledWorkflow) -> None:
    """Register (or, on re-import, replace) a code-first workflow."""
    _workflows[compiled.name] = compiled


def get(name: str) -> CompiledWorkflow | None:
    return _workflows.get(name)


def for_event(event_name: str) -> list[CompiledWorkflow]:
    """Code-first workflows started by events named ``event_name``."""
    return [w for w in _workflows.values() if w.event_name == event_name]


def unregister(name: str) -> None:
    _workflows.pop(name, None)
