"""The Event: a fact that something happened (or, for scheduled events, will happen), and the
WebhookSource that signed webhooks ingest events from.

Type, payload, source and entity never change once written; only a scheduled event's time and
status move (rescheduled, occurred, cancelled).
"""

from __future__ import annotations

import warnings
from typing import Any, ClassVar

from django.contrib.contenttypes.fields import GenericForeignKey
from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.db.models import Q
from django.utils import timezone

from automate_core.base import TenantQuerySet, TenantScopedModel, TimeStampedModel, UUIDModel
from automate_core.errors import ConflictError

MUTABLE_FIELDS = frozenset({"status", "occurs_at", "updated_at"})


class ImmutableEvent(ConflictError):
    code = "event_immutable"
    default_message = "Events cannot be changed once written."


class Event(UUIDModel, TimeStampedModel):
    class Status(models.TextChoices):
        SCHEDULED = "scheduled"
        OCCURRED = "occurred"
        CANCELLED = "cancelled"

    tenant = models.ForeignKey(
        "automate_core.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    type = models.CharField(max_length=200, db_index=True)
    payload = models.JSONField(default=dict, blank=True)
    source = models.CharField(max_length=100, default="api")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OCCURRED)
    occurs_at = models.DateTimeField(default=timezone.now, db_index=True)
    idempotency_key = models.CharField(max_length=200, null=True, blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    # Model-declared events: the row the event is about and the EventDefinition's name.
    content_type = models.ForeignKey(ContentType, null=True, blank=True, on_delete=models.SET_NULL)
    object_id = models.CharField(max_length=64, null=True, blank=True)
    entity = GenericForeignKey("content_type", "object_id")
    definition = models.CharField(max_length=200, blank=True)

    objects: ClassVar[Any] = models.Manager.from_queryset(TenantQuerySet)()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["content_type", "object_id", "definition"]),
            models.Index(fields=["tenant", "type", "-created_at"]),
        ]
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                condition=Q(idempotency_key__isnull=False, tenant__isnull=False),
                name="event_idempotency_per_tenant",
            ),
            models.UniqueConstraint(
                fields=["idempotency_key"],
                condition=Q(idempotency_key__isnull=False, tenant__isnull=True),
                name="event_idempotency_global",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.type} ({self.status})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            update_fields = kwargs.get("update_fields")
            if update_fields is None or not set(update_fields) <= MUTABLE_FIELDS:
                raise ImmutableEvent(
                    "Only a scheduled event's status and time can change; save with "
                    "update_fields within " + ", ".join(sorted(MUTABLE_FIELDS))
                )
        super().save(*args, **kwargs)

    def as_scope(self) -> dict[str, Any]:
        """The event as templates and rules see it."""
        return {
            "id": str(self.pk),
            "type": self.type,
            "payload": self.payload,
            "source": self.source,
            "occurs_at": self.occurs_at.isoformat(),
            "entity_id": self.object_id,
        }

    def __getitem__(self, key: str) -> Any:
        """``event["payload"]``: the dict form ``create_context`` received before it got the
        Event itself. Deprecated; read the attribute (``event.payload``, ``event.entity``)."""
        warnings.warn(
            f'event["{key}"] is deprecated: create_context receives the Event model; '
            f"use event.{'object_id' if key == 'entity_id' else key} (or event.entity)",
            DeprecationWarning,
            stacklevel=2,
        )
        return self.as_scope()[key]


class WebhookSource(UUIDModel, TimeStampedModel, TenantScopedModel):
    """Where signed webhooks come from. The secret lives in a secrets backend, named here."""

    source = models.SlugField(
        max_length=100, unique=True, help_text="The URL name: /api/v1/webhooks/<source>."
    )
    secret_ref = models.CharField(
        max_length=200, help_text="Name of the signing secret in the secrets backends."
    )
    event_type_prefix = models.CharField(
        max_length=100, blank=True, help_text="Prepended to the type the sender gives."
    )
    is_enabled = models.BooleanField(default=True)

    def __str__(self) -> str:
        return self.source
