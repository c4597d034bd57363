"""Modal GPU endpoints, the jobs run on them, and the files jobs produce.

A :class:`ModalJob` moves only along its ``TRANSITIONS`` (a compare-and-set in the database), so a
completion callback and a reconcile poll racing to finish the same job cannot both win. Each
spawn of the job's function is one entry of ``attempts`` (the GPU, the call id, when it ran, its
outcome and its budget hold); a retry or a GPU escalation appends an entry, never rewrites one.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any, ClassVar

from django.core.exceptions import ValidationError
from django.db import models

from automate_core.base import (
    SluggedModel,
    StatusModel,
    TenantScopedModel,
    TimeStampedModel,
    UUIDModel,
)
from automate_core.governance.models import DECIMAL_PLACES, MAX_DIGITS
from automate_core.governance.redaction import redact
from automate_core.governance.secrets import find_secret_refs


class GPU(models.TextChoices):
    """GPU types Modal offers, as Modal spells them in ``gpu=``."""

    T4 = "T4"
    L4 = "L4"
    A10G = "A10G"
    L40S = "L40S"
    A100_40GB = "A100-40GB"
    A100_80GB = "A100-80GB"
    H100 = "H100"
    H200 = "H200"
    B200 = "B200"


class ModalEndpoint(UUIDModel, TenantScopedModel, SluggedModel, TimeStampedModel):
    """A deployed function jobs are spawned on: which app and function, on which GPU, for how
    long, escalating to ``gpu_fallbacks`` in order when an attempt runs out of memory or is
    preempted. ``config`` holds backend options; credentials only as SecretRefs."""

    app_name = models.CharField(max_length=200, blank=True)
    function_name = models.CharField(
        max_length=300, help_text="The Modal function name; for the local backend a dotted path."
    )
    gpu = models.CharField(max_length=16, choices=GPU.choices, default=GPU.L4)
    gpu_fallbacks = models.JSONField(
        default=list, blank=True, help_text='GPUs to escalate to, in order: ["A100-40GB", "H100"].'
    )
    timeout = models.PositiveIntegerField(default=600, help_text="Seconds one attempt may run.")
    max_retries = models.PositiveSmallIntegerField(
        default=2, help_text="Attempts after the first (transient failures and escalations)."
    )
    backend = models.CharField(max_length=64, default="modal")
    config = models.JSONField(
        default=dict,
        blank=True,
        help_text='Backend options, e.g. {"token_id": {"$secret": "MODAL_TOKEN_ID"}, '
        '"token_secret": {"$secret": "MODAL_TOKEN_SECRET"}, "environment": "main"}.',
    )
    is_active = models.BooleanField(default=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant", "slug"], name="modal_endpoint_slug_unique")
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if redact(self.config) != self.config:
            raise ValidationError({"config": "Put credentials in SecretRefs, never inline."})
        find_secret_refs(self.config)
        unknown = [g for g in self.gpu_fallbacks or [] if g not in GPU.values]
        if not isinstance(self.gpu_fallbacks, list) or unknown:
            raise ValidationError({"gpu_fallbacks": f"a list of GPU types; unknown: {unknown}"})

    @property
    def gpu_ladder(self) -> list[str]:
        """The GPUs attempts may run on, in escalation order, each once."""
        return list(dict.fromkeys([self.gpu, *(self.gpu_fallbacks or [])]))

    def invoke(self, input: Any, **kwargs: Any) -> ModalJob:
        """Spawn a job of this endpoint (see :func:`automate_modal.services.spawn_job`)."""
        from automate_modal.services import spawn_job

        return spawn_job(self, input, **kwargs)

    def get_logs(self, limit: int = 50) -> list[dict[str, Any]]:
        """The timelines of the endpoint's latest jobs, newest first."""
        return [job.timeline() for job in self.jobs.order_by("-created_at")[:limit]]


class ModalJob(UUIDModel, TenantScopedModel, StatusModel, TimeStampedModel):
    """One job of an endpoint: its input, its attempts, and its output or error."""

    class Status(models.TextChoices):
        PENDING = "pending"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"
        CANCELLED = "cancelled"
        TIMED_OUT = "timed_out"

    INITIAL_STATUS = Status.PENDING
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        Status.PENDING: {Status.RUNNING, Status.FAILED, Status.CANCELLED},
        Status.RUNNING: {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT},
    }
    ACTIVE_STATUSES: ClassVar[set[str]] = {Status.PENDING, Status.RUNNING}
    FINAL_STATUSES: ClassVar[frozenset[str]] = frozenset(
        {Status.SUCCEEDED, Status.FAILED, Status.CANCELLED, Status.TIMED_OUT}
    )

    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.PENDING, db_index=True
    )
    endpoint = models.ForeignKey(ModalEndpoint, on_delete=models.PROTECT, related_name="jobs")
    input = models.JSONField(default=dict, blank=True)
    output = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    error_kind = models.CharField(max_length=32, blank=True)
    function_call_id = models.CharField(max_length=200, blank=True, db_index=True)
    gpu = models.CharField(max_length=16, blank=True, help_text="The GPU of the latest attempt.")
    attempts = models.JSONField(default=list, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    ended_at = models.DateTimeField(null=True, blank=True)
    gpu_seconds = models.FloatField(default=0)
    cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, default=Decimal(0)
    )
    pricing_version = models.CharField(max_length=64, blank=True)
    budget_scopes = models.JSONField(default=list, blank=True)
    trace_id = models.CharField(max_length=64, blank=True, db_index=True)
    execution_id = models.UUIDField(null=True, blank=True, db_index=True)
    step_id = models.CharField(max_length=200, blank=True)
    idempotency_key = models.CharField(max_length=300, unique=True)

    class Meta:
        indexes = [models.Index(fields=["tenant", "endpoint", "-created_at"])]

    def __str__(self) -> str:
        return f"{self.endpoint_id}:{self.pk} ({self.status})"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINAL_STATUSES

    @property
    def current_attempt(self) -> dict[str, Any] | None:
        return self.attempts[-1] if self.attempts else None

    def timeline(self) -> dict[str, Any]:
        """What happened to the job, attempt by attempt (the logs API and the admin)."""
        return {
            "job_id": str(self.pk),
            "status": self.status,
            "created_at": self.created_at.isoformat(),
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "ended_at": self.ended_at.isoformat() if self.ended_at else None,
            "attempts": [
                {k: v for k, v in attempt.items() if k != "hold"} for attempt in self.attempts
            ],
            "error": self.error,
            "gpu_seconds": self.gpu_seconds,
            "cost": str(self.cost),
        }


def artifact_path(instance: ModalArtifact, filename: str) -> str:
    return f"modal/{instance.tenant_id}/{instance.job_id}/{filename}"


class ModalArtifact(UUIDModel, TenantScopedModel, TimeStampedModel):
    """A file a job produced: stored through Django's storage API, or a URL it lives at."""

    job = models.ForeignKey(ModalJob, on_delete=models.CASCADE, related_name="artifacts")
    name = models.CharField(max_length=300)
    content_type = models.CharField(max_length=200, blank=True)
    size = models.PositiveBigIntegerField(default=0)
    url = models.URLField(max_length=2000, blank=True)
    file = models.FileField(upload_to=artifact_path, max_length=500, blank=True)

    def __str__(self) -> str:
        return self.name

    @property
    def location(self) -> str:
        return self.file.url if self.file else self.url
