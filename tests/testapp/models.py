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
