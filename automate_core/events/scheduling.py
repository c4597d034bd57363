"""Scheduled and once-only events of model rows, and the jobs that fire them.

A scheduled Event's time lives in the database: a ``event.due`` job with ``available_at`` at
the time it must fire. Rescheduling moves ``occurs_at`` and writes a new job; a job whose
``occurs_at`` no longer matches the event does nothing, so stale timers are harmless.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import models, transaction
from django.utils import timezone

from automate_core.events import dispatch
from automate_core.events.definitions import handlers_for
from automate_core.events.ingest import ingestor
from automate_core.events.models import Event
from automate_core.outbox import store
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease

DUE_JOB = "event.due"
HOOK_JOB = "event.hook"


def occur_once(instance: models.Model, name: str, tenant: Any) -> None:
    """The immediate event of ``instance`` for ``name``, ingested once per row."""
    label = instance._meta.label_lower
    ingestor.ingest(
        name,
        {"model": label, "pk": str(instance.pk)},
        tenant=tenant,
        source="model",
        idempotency_key=f"{label}:{instance.pk}:{name}",
        entity=instance,
    )


def schedule(instance: models.Model, name: str, when: datetime, tenant: Any) -> None:
    content_type = ContentType.objects.get_for_model(instance)
    with transaction.atomic():
        event = (
            Event.objects.select_for_update()
            .filter(content_type=content_type, object_id=str(instance.pk), definition=name)
            .filter(status=Event.Status.SCHEDULED)
            .first()
        )
        if event is None:
            event = Event.objects.create(
                tenant_id=tenant,
                type=name,
                payload={"model": instance._meta.label_lower, "pk": str(instance.pk)},
                source="model",
                status=Event.Status.SCHEDULED,
                occurs_at=when,
                content_type=content_type,
                object_id=str(instance.pk),
                definition=name,
            )
            _hooks(event, "created")
        elif event.occurs_at == when:
            return
        else:
            event.occurs_at = when
            event.save(update_fields=["occurs_at", "updated_at"])
            dispatch.rescheduled(event)
        _enqueue_due(event)


def schedule_ingested(event: Event) -> None:
    """An ingested event stored ``scheduled`` (its ``occurs_at`` is in the future): it fires
    at its time like a model's scheduled event, telling subscribers early if they asked."""
    _hooks(event, "created")
    _enqueue_due(event)


def cancel(instance: models.Model, name: str) -> None:
    content_type = ContentType.objects.get_for_model(instance)
    _cancel(
        Event.objects.filter(content_type=content_type, object_id=str(instance.pk), definition=name)
    )


def cancel_for(content_type: ContentType, object_id: str) -> None:
    _cancel(Event.objects.filter(content_type=content_type, object_id=object_id))


def _cancel(events: Any) -> None:
    with transaction.atomic():
        for event in events.filter(status=Event.Status.SCHEDULED).select_for_update():
            event.status = Event.Status.CANCELLED
            event.save(update_fields=["status", "updated_at"])
            dispatch.cancelled(event)
            _hooks(event, "cancelled")


def _enqueue_due(event: Event) -> None:
    """Fire at the event's time, with an ``early`` fire first when a subscriber asked to hear
    of it before (the engine does for event workflows with a negative offset)."""
    lead = dispatch.lead(event.type)
    phase = "early" if lead > timedelta(0) else "occur"
    _enqueue_fire(event, phase, event.occurs_at - lead)


def _enqueue_fire(event: Event, phase: str, at: datetime) -> None:
    store.enqueue(
        DUE_JOB,
        {"event": str(event.pk), "occurs_at": event.occurs_at.isoformat(), "phase": phase},
        tenant=event.tenant_id,
        available_at=max(at, timezone.now()),
        trace_id=event.trace_id or None,
    )


def run_occurred_hooks(event: Event) -> None:
    """Enqueue the ``@on_event`` handlers of an event that occurred, one job each."""
    _hooks(event, "occurred")


def _hooks(event: Event, phase: str) -> None:
    for fn in handlers_for(phase, event):
        store.enqueue(
            HOOK_JOB,
            {
                "event": str(event.pk),
                "phase": phase,
                "handler": f"{fn.__module__}.{fn.__qualname__}",
            },
            tenant=event.tenant_id,
            trace_id=event.trace_id or None,
        )


@outbox_handler(DUE_JOB)
def fire_due_event(job: Lease) -> None:
    event = Event.objects.select_for_update().filter(pk=job.payload["event"]).first()
    if event is None or event.status != Event.Status.SCHEDULED:
        return
    if event.occurs_at.isoformat() != job.payload["occurs_at"]:
        return  # rescheduled: a newer job fires it
    if job.payload["phase"] == "early":
        # Tell subscribers the event approaches, then fire again when it occurs. The timer,
        # not the clock, says which phase this is.
        dispatch.approaching(event)
        _enqueue_fire(event, "occur", event.occurs_at)
        return
    event.status = Event.Status.OCCURRED
    event.save(update_fields=["status", "updated_at"])
    dispatch.occurred(event)
    run_occurred_hooks(event)


@outbox_handler(HOOK_JOB)
def run_hook(job: Lease) -> None:
    event = Event.objects.filter(pk=job.payload["event"]).first()
    if event is None:
        return
    for fn in handlers_for(job.payload["phase"], event):
        if f"{fn.__module__}.{fn.__qualname__}" == job.payload["handler"]:
            fn(event)
