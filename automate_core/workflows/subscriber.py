"""The engine's subscription to scheduled events, registered with events' dispatch at ready.

A scheduled event starts its event workflows ``offset_minutes`` from its time (a negative
offset starts them early, waiting for their own time), starts what its triggers match when it
occurs, and moves or cancels the runs still waiting to start when it moves or is cancelled.
"""

from __future__ import annotations

from datetime import timedelta

from automate_core.events.models import Event
from automate_core.workflows import engine, registry


class EngineSubscriber:
    def lead(self, event_type: str) -> timedelta:
        engine.discover_workflows()
        earliest = min((w.offset_minutes for w in registry.for_event(event_type)), default=0)
        return timedelta(minutes=max(0, -earliest))

    def approaching(self, event: Event) -> None:
        engine.start_event_workflows(event)

    def occurred(self, event: Event) -> None:
        engine.handle_event_occurred(event)

    def rescheduled(self, event: Event) -> None:
        engine.reschedule_event_runs(event)

    def cancelled(self, event: Event) -> None:
        engine.cancel_event_runs(event)


engine_subscriber = EngineSubscriber()
