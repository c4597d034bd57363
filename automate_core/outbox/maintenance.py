"""Periodic maintenance the outbox worker runs for the apps: releasing expired budget holds,
pruning executions past retention, and whatever an app registers (say, reconciling jobs whose
completion never arrived).

The worker's maintenance thread runs each task on its period, in the same thread as the lease
heartbeats, so a task does a bounded amount of work per pass. A task that returns True has work
left and runs again after the reap interval instead of its full period. A task that raises is
logged and runs again next period.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

#: ``reap``: every ``OUTBOX_REAP_INTERVAL_SECONDS``; ``prune``: every
#: ``OUTBOX_PRUNE_INTERVAL_SECONDS`` (never, when that is unset).
Period = Literal["reap", "prune"]


@dataclass(frozen=True)
class MaintenanceTask:
    name: str
    run: Callable[[], object]
    every: Period


_tasks: dict[str, MaintenanceTask] = {}


def register(name: str, run: Callable[[], object], *, every: Period = "reap") -> None:
    """Run ``run`` in every worker's maintenance thread, once per ``every`` period. Registering
    a name again replaces its task (a module imported twice registers once)."""
    _tasks[name] = MaintenanceTask(name, run, every)


def tasks() -> list[MaintenanceTask]:
    return list(_tasks.values())
