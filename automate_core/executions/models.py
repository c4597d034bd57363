"""Execution and StepRun: the durable record of a run, step by step.

``Execution.seq`` counts the step visits of a run; every outbox job for a run names the seq it
is for, so a late or duplicated job (a timeout after the signal came, a redelivered step) sees
that the run moved on and does nothing. A StepRun is one visit of one step: it is completed at
most once and its output and transition are the checkpoint the run resumes from.
"""

from __future__ import annotations

from typing import Any, ClassVar

from django.db import models
from django.db.models import Q

from automate_core.base import InvalidTransition, TenantManager, TimeStampedModel, UUIDModel


class Execution(UUIDModel, TimeStampedModel):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        WAITING = "waiting"
        COMPLETED = "completed"
        FAILED = "failed"
        CANCELLED = "cancelled"

    FINISHED = frozenset({Status.COMPLETED, Status.FAILED, Status.CANCELLED})

    #: Every status move a run can make. The engine makes each one through :meth:`move_to`;
    #: a run is created ``queued``, or ``waiting`` for a later start.
    TRANSITIONS: ClassVar[dict[str, frozenset[str]]] = {
        # started by a worker; its step is missing; cancelled
        Status.QUEUED: frozenset({Status.RUNNING, Status.FAILED, Status.CANCELLED}),
        # goto the next step; sleep or wait; complete; fail; cancelled while a retry is pending
        Status.RUNNING: frozenset(
            {Status.QUEUED, Status.WAITING, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
        ),
        # signal, event or timeout go on (queued) or end the run (completed, failed); a sleep
        # or a later start wakes (running); cancelled
        Status.WAITING: frozenset(
            {Status.QUEUED, Status.RUNNING, Status.COMPLETED, Status.FAILED, Status.CANCELLED}
        ),
        Status.FAILED: frozenset({Status.QUEUED}),  # retried from the failed step
        Status.COMPLETED: frozenset(),
        Status.CANCELLED: frozenset(),
    }

    tenant = models.ForeignKey(
        "automate_core.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    workflow_name = models.CharField(max_length=200, db_index=True)
    workflow_version = models.ForeignKey(
        "automate_core.WorkflowVersion",
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="executions",
    )
    version = models.CharField(max_length=64, help_text="The version digest this run is pinned to.")
    event = models.ForeignKey(
        "automate_core.Event",
        null=True,
        blank=True,
        on_delete=models.SET_NULL,
        related_name="executions",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.QUEUED, db_index=True
    )
    seq = models.PositiveIntegerField(default=1)
    current_step = models.CharField(max_length=200, blank=True)
    context = models.JSONField(default=dict, blank=True)
    result = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    waiting_for = models.JSONField(null=True, blank=True)
    wake_at = models.DateTimeField(null=True, blank=True, db_index=True)
    trace_id = models.CharField(max_length=64, blank=True, db_index=True)
    usage = models.JSONField(
        default=dict, blank=True, help_text="Rolled-up usage and cost of AI steps."
    )
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    objects = TenantManager()

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["status", "workflow_name"]),
            # Retention pruning: finished runs, oldest first.
            models.Index(
                fields=["finished_at"],
                name="execution_finished_idx",
                condition=Q(status__in=["completed", "failed", "cancelled"]),
            ),
        ]
        permissions = [("view_raw_payload", "Can view raw (unredacted) payloads")]
        constraints = [
            # An event starts a given workflow once, however often it is delivered.
            models.UniqueConstraint(
                fields=["event", "workflow_name"],
                condition=Q(event__isnull=False),
                name="one_run_per_event_and_workflow",
            )
        ]

    def __str__(self) -> str:
        return f"{self.workflow_name} [{self.status}]"

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def move_to(self, status: str) -> None:
        """Set ``status`` if :attr:`TRANSITIONS` allows the move, else raise InvalidTransition.

        In memory only: the engine writes the run with its compare-and-set checkpoint (or under
        the run's row lock), which refuses a run another writer moved meanwhile.
        """
        allowed = self.TRANSITIONS.get(self.status, frozenset())
        if status not in allowed:
            raise InvalidTransition(type(self).__name__, str(self.status), str(status), allowed)
        self.status = status

    def save(self, *args: Any, **kwargs: Any) -> None:
        """Saving a loaded run never writes ``usage``: AI steps add to it while the engine
        holds the run in memory, and only ``executions.services.add_usage`` may change it."""
        if not self._state.adding and kwargs.get("update_fields") is None:
            kwargs["update_fields"] = [
                f.name
                for f in self._meta.concrete_fields
                if not f.primary_key and f.name != "usage"
            ]
        super().save(*args, **kwargs)


class StepRun(UUIDModel, TimeStampedModel):
    class Status(models.TextChoices):
        RUNNING = "running"
        RETRYING = "retrying"
        COMPLETED = "completed"
        FAILED = "failed"

    execution = models.ForeignKey(Execution, on_delete=models.CASCADE, related_name="steps")
    seq = models.PositiveIntegerField()
    step_id = models.CharField(max_length=200)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    attempt = models.PositiveIntegerField(default=0)
    input = models.JSONField(null=True, blank=True)
    output = models.JSONField(null=True, blank=True)
    transition = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    idempotency_key = models.CharField(max_length=300)
    trace_id = models.CharField(max_length=64, blank=True)
    duration_ms = models.PositiveIntegerField(null=True, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["execution", "seq"]
        constraints = [
            models.UniqueConstraint(fields=["execution", "seq"], name="one_steprun_per_visit")
        ]

    def __str__(self) -> str:
        return f"{self.step_id} #{self.seq} [{self.status}]"
