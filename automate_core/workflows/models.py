"""Data-first workflows: an Automation and its numbered WorkflowVersions (JSON graphs).

A published version never changes; one version per automation is live. Executions record the
version they started on and keep it across later publishes.
"""

from __future__ import annotations

from typing import Any

from django.db import models, transaction
from django.db.models import Max, Q
from django.utils import timezone

from automate_core.base import SluggedModel, TenantScopedModel, TimeStampedModel, UUIDModel
from automate_core.errors import ConflictError, InvalidInputError


class Automation(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["name"]
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="automation_slug_per_tenant")
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def live_version(self) -> WorkflowVersion | None:
        return self.versions.filter(is_live=True).first()

    def new_version(self, graph: dict[str, Any]) -> WorkflowVersion:
        """A draft with the next version number."""
        with transaction.atomic():
            Automation.objects.select_for_update().filter(pk=self.pk).first()
            last = self.versions.aggregate(m=Max("version"))["m"] or 0
            return WorkflowVersion.objects.create(automation=self, version=last + 1, graph=graph)


class WorkflowVersion(UUIDModel, TimeStampedModel):
    automation = models.ForeignKey(Automation, on_delete=models.CASCADE, related_name="versions")
    version = models.PositiveIntegerField()
    graph = models.JSONField()
    digest = models.CharField(max_length=64, blank=True, editable=False)
    published_at = models.DateTimeField(null=True, blank=True, editable=False)
    is_live = models.BooleanField(default=False)

    class Meta:
        ordering = ["automation", "-version"]
        constraints = [
            models.UniqueConstraint(
                fields=["automation", "version"], name="one_number_per_version"
            ),
            models.UniqueConstraint(
                fields=["automation"], condition=Q(is_live=True), name="one_live_version"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.automation} v{self.version}"

    @property
    def is_published(self) -> bool:
        return self.published_at is not None

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            stored = (
                WorkflowVersion.objects.filter(pk=self.pk).values("graph", "published_at").first()
            )
            if stored and stored["published_at"] and stored["graph"] != self.graph:
                raise ConflictError(f"{self} is published and cannot change; create a new version")
        super().save(*args, **kwargs)

    def publish(self, *, make_live: bool = True, actor: str = "system") -> None:
        """Validate, freeze, and (by default) make this the live version in one transaction.

        Appends a ``workflow.publish`` audit row by ``actor`` in the same transaction.
        """
        from automate_core.governance import audit
        from automate_core.workflows.graph import graph_digest, validate

        problems = validate(self.graph)
        if problems:
            raise InvalidInputError(
                f"{self} has {len(problems)} problem(s)",
                details={"problems": [{"path": p, "message": m} for p, m in problems]},
            )
        with transaction.atomic():
            if not self.is_published:
                self.published_at = timezone.now()
                self.digest = graph_digest(self.graph)
                self.save(update_fields=["published_at", "digest"])
            if make_live:
                self.make_live()
            audit.record(
                "workflow.publish",
                actor=actor,
                tenant=self.automation.tenant,
                target=f"workflow_version:{self.pk}",
                data={"automation": self.automation.slug, "version": self.version,
                      "digest": self.digest, "live": make_live},
            )  # fmt: skip

    def make_live(self) -> None:
        if not self.is_published:
            raise ConflictError(f"{self} must be published before it can be live")
        with transaction.atomic():
            WorkflowVersion.objects.filter(automation=self.automation, is_live=True).exclude(
                pk=self.pk
            ).update(is_live=False)
            WorkflowVersion.objects.filter(pk=self.pk).update(is_live=True)
            self.is_live = True
