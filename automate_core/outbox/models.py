"""OutboxJob: one unit of durable work, written in the producer's transaction.

A job moves ``queued → running → done``; a failed attempt goes ``running → failed`` (claimable
again at ``available_at``, after a backoff) and, once ``max_attempts`` are spent, ``dead`` until
an operator redrives it. Every claim bumps ``fencing_token``; writes that finish an attempt are
conditional on the token, so a worker whose lease was taken over cannot finish the job.
The moves themselves live in :mod:`automate_core.outbox.store` as single conditional UPDATEs.
"""

from __future__ import annotations

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.utils import timezone

from automate_core.base import TenantManager, TimeStampedModel, UUIDModel


class OutboxJob(UUIDModel, TimeStampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        DONE = "done"
        FAILED = "failed", "failed (retry pending)"
        DEAD = "dead"

    # Statuses a worker may claim once available_at has passed.
    CLAIMABLE = (Status.QUEUED, Status.FAILED)
    FINISHED = (Status.DONE, Status.DEAD)

    tenant = models.ForeignKey(
        "automate_core.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=200, help_text="Name of the handler that runs the job.")
    payload = models.JSONField(default=dict, blank=True, encoder=DjangoJSONEncoder)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    attempts = models.PositiveIntegerField(default=0, help_text="Claims so far.")
    max_attempts = models.PositiveIntegerField(default=10)
    available_at = models.DateTimeField(
        default=timezone.now,
        help_text="Not claimed before this time: retries, sleeps, timeouts and schedules.",
    )
    lease_owner = models.CharField(max_length=200, blank=True, default="")
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    fencing_token = models.BigIntegerField(
        default=0, help_text="Bumped on every claim; only the newest claim may finish the job."
    )
    last_error = models.TextField(blank=True, default="")
    trace_id = models.CharField(max_length=64, blank=True, default="")
    idempotency_key = models.CharField(max_length=255, null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True, help_text="Time of the last claim.")
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "outbox job"
        indexes = [
            # The claim query: claimable rows in available_at order (also min() for timers).
            models.Index(
                fields=["available_at"],
                name="outbox_claimable_idx",
                condition=models.Q(status__in=["queued", "failed"]),
            ),
            # The reaper: running rows by lease expiry.
            models.Index(
                fields=["lease_expires_at"],
                name="outbox_lease_expiry_idx",
                condition=models.Q(status="running"),
            ),
            # Retention pruning and the dead-letter list.
            models.Index(
                fields=["status", "finished_at"],
                name="outbox_finished_idx",
                condition=models.Q(status__in=["done", "dead"]),
            ),
        ]
        constraints = [
            # Per tenant: one tenant's key can never return another tenant's job. Jobs with
            # no tenant share one key space (NULLs compare equal here).
            models.UniqueConstraint(
                fields=["tenant", "idempotency_key"],
                name="outbox_unique_idempotency_key",
                condition=models.Q(idempotency_key__isnull=False),
                nulls_distinct=False,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} {self.id} ({self.status})"
