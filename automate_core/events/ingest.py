"""EventIngestor: store an Event and the job that processes it, in one transaction.

``ingest()`` may be called inside the caller's own ``transaction.atomic()``: if the caller rolls
back, neither the event nor its job exist and nothing runs. The same idempotency key twice
returns the stored event and adds no second job, so redelivered webhooks start nothing new; the
same key with another type or payload is a conflict (409), never silently taken for the first.

An event whose ``occurs_at`` is in the future is stored ``scheduled`` and occurs at that time,
through the same timers as a model's scheduled events (:mod:`automate_core.events.scheduling`):
what it starts, starts then, once (event workflows with a negative offset that much before).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.contrib.contenttypes.models import ContentType
from django.db import IntegrityError, models, transaction
from django.utils import timezone

from automate_core.errors import ConflictError, InvalidInputError
from automate_core.events.models import Event
from automate_core.outbox import store
from automate_core.tracing import current_trace_id, new_trace_id

EVENT_JOB = "event.occurred"
MAX_PAYLOAD_BYTES = 256 * 1024


@dataclass(frozen=True)
class Ingested:
    event: Event
    created: bool


class EventIngestor:
    def ingest(
        self,
        event_type: str,
        payload: Any = None,
        *,
        tenant: Any = None,
        source: str = "api",
        idempotency_key: str | None = None,
        entity: models.Model | None = None,
        trace_id: str | None = None,
        occurs_at: datetime | None = None,
    ) -> Ingested:
        payload = {} if payload is None else payload
        _check(event_type, payload)
        tenant_id = getattr(tenant, "pk", tenant)
        scheduled = occurs_at is not None and occurs_at > timezone.now()
        if idempotency_key:
            stored = _existing(tenant_id, idempotency_key)
            if stored is not None:
                return _repeated(stored, event_type, payload)
        event = Event(
            tenant_id=tenant_id,
            type=event_type,
            payload=payload,
            source=source,
            idempotency_key=idempotency_key or None,
            trace_id=trace_id or current_trace_id() or new_trace_id(),
            occurs_at=occurs_at or timezone.now(),
            status=Event.Status.SCHEDULED if scheduled else Event.Status.OCCURRED,
        )
        if entity is not None:
            event.content_type = ContentType.objects.get_for_model(entity)
            event.object_id = str(entity.pk)
        try:
            with transaction.atomic():
                event.save(force_insert=True)
                if scheduled:
                    # scheduling builds on this module, so it is imported here
                    from automate_core.events import scheduling

                    scheduling.schedule_ingested(event)
                else:
                    store.enqueue(
                        EVENT_JOB,
                        {"event": str(event.pk)},
                        tenant=tenant_id,
                        trace_id=event.trace_id,
                    )
        except IntegrityError:
            # A concurrent delivery with the same key won the insert.
            stored = _existing(tenant_id, idempotency_key) if idempotency_key else None
            if stored is None:
                raise
            return _repeated(stored, event_type, payload)
        return Ingested(event, created=True)


class IdempotencyKeyReused(ConflictError):
    code = "idempotency_key_reused"
    default_message = "This idempotency key was already used for another event."


def _repeated(stored: Event, event_type: str, payload: Any) -> Ingested:
    """The stored event for a repeated key, if the repeat is the same event."""
    if stored.type != event_type or stored.payload != json.loads(json.dumps(payload, default=str)):
        raise IdempotencyKeyReused(
            f"Idempotency key {stored.idempotency_key!r} was already used for another event; "
            "send a new key for a new event.",
            details={"idempotency_key": stored.idempotency_key, "event_id": str(stored.pk)},
        )
    return Ingested(stored, created=False)


def _existing(tenant_id: Any, key: str) -> Event | None:
    return Event.objects.filter(tenant_id=tenant_id, idempotency_key=key).first()


def _check(event_type: str, payload: Any) -> None:
    if not isinstance(event_type, str) or not event_type.strip() or len(event_type) > 200:
        raise InvalidInputError("An event type is a non-empty string of at most 200 characters")
    size = len(json.dumps(payload, default=str).encode())
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInputError(
            f"Event payload is {size} bytes; the limit is {MAX_PAYLOAD_BYTES}",
            details={"limit_bytes": MAX_PAYLOAD_BYTES},
        )


ingestor = EventIngestor()
