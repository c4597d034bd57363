"""Triggers (rule specs): an event type and a JSONLogic condition that start an automation."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError
from django.db import models

from automate_core.base import TenantScopedModel, TimeStampedModel, UUIDModel
from automate_core.rules.jsonlogic import JSONLogicError, compile


class Trigger(UUIDModel, TimeStampedModel, TenantScopedModel):
    """When an event of ``event_type`` occurs and ``condition`` holds over
    ``{"event": ..., "payload": ...}``, start ``automation`` on ``version`` (pinned) or on its
    live version when ``version`` is empty."""

    name = models.CharField(max_length=200)
    event_type = models.CharField(max_length=200, db_index=True)
    condition = models.JSONField(null=True, blank=True, help_text="JSONLogic; empty = always.")
    automation = models.ForeignKey(
        "automate_core.Automation", on_delete=models.CASCADE, related_name="+"
    )
    version = models.ForeignKey(
        "automate_core.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="+",
        help_text="Pin a published version; empty follows the live version.",
    )
    is_enabled = models.BooleanField(default=True)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return f"{self.name}: {self.event_type} -> {self.automation}"

    @property
    def has_condition(self) -> bool:
        """An empty condition (null, ``{}`` or ``true``) means the trigger always matches."""
        return self.condition not in (None, {}, True)

    def clean(self) -> None:
        """A trigger may only start its own tenant's automation (and that automation's
        versions): otherwise one tenant's events would run another tenant's workflow."""
        if self.automation_id and self.automation.tenant_id != self.tenant_id:
            raise ValidationError({"automation": "Belongs to another tenant."})
        if self.version is not None and self.version.automation_id != self.automation_id:
            raise ValidationError({"version": "Is not a version of this automation."})
        if self.version is not None and not self.version.is_published:
            raise ValidationError({"version": "Is a draft; pin a published version."})
        # A malformed condition is refused when saved rather than silently never matching.
        if self.has_condition:
            try:
                compile(self.condition)
            except JSONLogicError as exc:
                raise ValidationError(
                    {"condition": f"Invalid JSONLogic ({exc.type}): {exc}"}
                ) from exc

    def save(self, *args: Any, **kwargs: Any) -> None:
        self.clean()
        super().save(*args, **kwargs)
