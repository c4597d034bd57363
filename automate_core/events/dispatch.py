"""One dispatch point for what happens to scheduled events; whoever acts on them subscribes.

The events package decides when a scheduled event occurs, moves or is cancelled, and knows
nothing of who acts on that: the workflow engine subscribes at app ready, a test subscribes a
recorder. Subscribers are called in the order they subscribed, synchronously, inside the
caller's transaction, so what they write commits or rolls back with the event's own change; an
exception propagates (the outbox job that fired the event is retried).

Ingested events (API, webhooks, immediate model events) are published as ``event.occurred``
outbox jobs, which the engine handles directly so that the event and its waiting runs are
loaded in one statement.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Protocol

from automate_core.events.models import Event


class EventSubscriber(Protocol):
    def lead(self, event_type: str) -> timedelta:
        """How long before a scheduled event of ``event_type`` occurs this subscriber wants
        :meth:`approaching` called; zero for not before."""
        ...

    def approaching(self, event: Event) -> None:
        """The event occurs in at most the longest lead any subscriber asked for."""
        ...

    def occurred(self, event: Event) -> None:
        """The scheduled event's time came; its status is now ``occurred``."""
        ...

    def rescheduled(self, event: Event) -> None:
        """The scheduled event's ``occurs_at`` moved."""
        ...

    def cancelled(self, event: Event) -> None:
        """The scheduled event will not occur; its status is now ``cancelled``."""
        ...


_subscribers: list[EventSubscriber] = []


def subscribe(subscriber: EventSubscriber) -> None:
    """Add ``subscriber``; subscribing the same object twice keeps one subscription."""
    if subscriber not in _subscribers:
        _subscribers.append(subscriber)


def unsubscribe(subscriber: EventSubscriber) -> None:
    if subscriber in _subscribers:
        _subscribers.remove(subscriber)


def lead(event_type: str) -> timedelta:
    """The longest lead any subscriber asked for on events of ``event_type``."""
    return max((s.lead(event_type) for s in _subscribers), default=timedelta(0))


def approaching(event: Event) -> None:
    for subscriber in _subscribers:
        subscriber.approaching(event)


def occurred(event: Event) -> None:
    for subscriber in _subscribers:
        subscriber.occurred(event)


def rescheduled(event: Event) -> None:
    for subscriber in _subscribers:
        subscriber.rescheduled(event)


def cancelled(event: Event) -> None:
    for subscriber in _subscribers:
        subscriber.cancelled(event)
