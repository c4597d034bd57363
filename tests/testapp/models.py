"""Concrete models over the abstract bases, used only by the tests."""

from django.db import models

from automate_core.base import (
    AuditableModel,
    MetadataModel,
    OrderedModel,
    SluggedModel,
    SoftDeleteModel,
    StatusModel,
    TenantScopedModel,
    TimeStampedModel,
    UUIDModel,
)
from automate_core.events.definitions import EventDefinition


class Note(UUIDModel, TimeStampedModel, TenantScopedModel, AuditableModel):
    title = models.CharField(max_length=100)


class Document(  # type: ignore[misc]  # SoftDeleteManager also offers for_tenant()
    SoftDeleteModel, TenantScopedModel, SluggedModel, MetadataModel, TimeStampedModel
):
    pass


class Article(StatusModel):
    INITIAL_STATUS = "draft"
    TRANSITIONS = {"draft": {"review"}, "review": {"draft", "published"}, "published": {"archived"}}
    ACTIVE_STATUSES = {"draft", "review", "published"}


class Task(OrderedModel, TenantScopedModel):
    ORDER_SCOPE = ("tenant",)
    title = models.CharField(max_length=100)


class Invoice(TenantScopedModel):
    """Declares one immediate and one scheduled event."""

    status = models.CharField(max_length=20, default="open")
    due_at = models.DateTimeField(null=True, blank=True)

    events = [
        EventDefinition("invoice.paid", condition=lambda invoice: invoice.status == "paid"),
        EventDefinition(
            "invoice.due", date_field="due_at", condition=lambda invoice: invoice.status != "paid"
        ),
    ]


class Reservation(models.Model):
    """The developer guide's model (docs/workflows.md), as written there."""

    checkin_at = models.DateTimeField()
    status = models.CharField(max_length=20, default="pending")

    events = [
        # Immediate: occurs after commit if condition is true
        EventDefinition("reservation_confirmed", condition=lambda r: r.status == "confirmed"),
        # Scheduled: occurs at checkin_at (still gated by condition)
        EventDefinition(
            "checkin_due", date_field="checkin_at", condition=lambda r: r.status == "confirmed"
        ),
    ]
