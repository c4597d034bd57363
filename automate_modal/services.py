"""Operations on Modal jobs: what other apps, the API, the admin and the ``modal.run`` step call.

Guarantees:

* :func:`spawn_job` is idempotent on its ``idempotency_key`` (a second call returns the first
  job). It holds the attempt's worst case on the budgets, spawns, and records the call id, the
  hold and a first reconcile poll in the caller's transaction. A refused budget or a failed
  spawn raises and leaves nothing behind (the hold is released; nothing was spawned on a budget
  refusal).
* A job ends once: :func:`complete_job` (the completion callback) and :func:`reconcile` (the
  poll) lock the job's row and act only on the current attempt while it has no outcome, so a
  late or replayed report changes nothing.
* Every attempt that ran is charged the seconds it ran at its GPU's price (settling its hold),
  whatever its outcome. An ``oom`` or ``preempted`` attempt is retried on the next GPU of the
  endpoint's ladder (``gpu`` then ``gpu_fallbacks``); ``transient`` ones on the same GPU after
  a backoff; both within ``1 + max_retries`` attempts. A call still running past the endpoint's
  timeout (plus ``TIMEOUT_GRACE_SECONDS``) is cancelled and the job is ``timed_out``.
* An output larger than ``OUTPUT_INLINE_MAX_BYTES`` is stored as a ``ModalArtifact``
  (``output.json``, through Django's storage API); the job's output then references it.
* When a job of a workflow run ends, in the same transaction: its cost is added to the run's
  usage, an audit row is written, and the run waiting on ``modal:<job id>`` is signalled.

Known limit: a step spawns inside its visit's transaction, so a crash after the spawn and before
that commit forgets the call (it runs to its end unrecorded, and the retried step spawns again,
with the same idempotency key passed to the function).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from decimal import Decimal
from typing import Any

from django.core.files.base import ContentFile
from django.db import transaction
from django.utils import timezone

from automate_core.errors import ConflictError, NotFoundError
from automate_core.executions.models import Execution
from automate_core.executions.services import add_usage
from automate_core.governance import audit
from automate_core.governance.budgets import BudgetExceeded
from automate_core.outbox import store
from automate_core.tenancy.models import Tenant
from automate_core.tracing import current_trace_id, trace
from automate_core.workflows import engine
from automate_modal import metering
from automate_modal.backends.base import (
    Done,
    Failed,
    Outcome,
    Pending,
    SpawnFailed,
    backend_for,
)
from automate_modal.callbacks import callback_url
from automate_modal.conf import modal_settings
from automate_modal.models import ModalArtifact, ModalEndpoint, ModalJob
from automate_modal.pricing import price_for

__all__ = [
    "RECONCILE_JOB",
    "BudgetExceeded",
    "cancel_job",
    "complete_job",
    "get_endpoint",
    "get_job",
    "reconcile",
    "signal_name",
    "spawn_job",
]

#: The outbox job kind that polls a running call (``automate_modal.tasks``).
RECONCILE_JOB = "modal.reconcile"
AUDIT_ACTION = "modal.job"

Status = ModalJob.Status


def signal_name(job_id: uuid.UUID | str) -> str:
    """The signal a run waiting on the job waits for."""
    return f"modal:{job_id}"


def get_endpoint(tenant: Tenant | uuid.UUID | str, slug: str) -> ModalEndpoint:
    """An active endpoint of the tenant by slug; another tenant's slug is not found."""
    found = (
        ModalEndpoint.objects.for_tenant(tenant)
        .filter(slug=slug, is_active=True)
        .select_related("tenant")
        .first()
    )
    if found is None:
        raise NotFoundError(f"No Modal endpoint {slug!r} in this tenant")
    return found


def get_job(tenant: Tenant | uuid.UUID | str, job_id: uuid.UUID | str) -> ModalJob:
    found = (
        ModalJob.objects.for_tenant(tenant)
        .filter(pk=job_id)
        .select_related("endpoint", "tenant")
        .first()
    )
    if found is None:
        raise NotFoundError("No such Modal job in this tenant")
    return found


def spawn_job(
    endpoint: ModalEndpoint,
    input: Any,
    *,
    idempotency_key: str = "",
    execution_id: uuid.UUID | str | None = None,
    step_id: str = "",
    workflow: str = "",
    api_key_id: uuid.UUID | str | None = None,
    trace_id: str = "",
) -> ModalJob:
    """Spawn a job of ``endpoint`` on its first GPU and return it, ``running``.

    Raises ``BudgetExceeded`` (402, nothing spawned) or ``SpawnFailed`` (503; ``kind`` says
    whether trying later may work)."""
    key = idempotency_key or f"modal:{uuid.uuid4().hex}"
    existing = ModalJob.objects.filter(idempotency_key=key).select_related("endpoint").first()
    if existing is not None:
        if existing.endpoint_id != endpoint.pk:
            raise ConflictError("This idempotency key was used for a job of another endpoint")
        return existing
    if not endpoint.is_active:
        raise ConflictError(f"Modal endpoint {endpoint.slug!r} is not active")
    job = ModalJob(
        id=uuid.uuid4(),
        tenant_id=endpoint.tenant_id,
        endpoint=endpoint,
        input=input,
        idempotency_key=key,
        budget_scopes=metering.scopes_for(
            endpoint.tenant_id, api_key_id=api_key_id, workflow=workflow
        ),
        trace_id=trace_id or current_trace_id() or "",
        execution_id=execution_id,
        step_id=step_id,
    )
    with trace(job.trace_id or None), transaction.atomic():
        job.save(force_insert=True)
        _plan(job, endpoint.gpu)
        _launch(job, first=True)
    return job


def complete_job(job_id: uuid.UUID | str, *, attempt: int, outcome: Done | Failed) -> bool:
    """Record the outcome of attempt ``attempt`` (from its completion callback). False, and
    nothing changed, when the job has ended or that attempt has an outcome already."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or not _is_current(job, attempt):
            return False
        with trace(job.trace_id or None):
            _record_outcome(job, outcome)
    return True


def reconcile(job_id: uuid.UUID | str, *, attempt: int, polls: int = 0) -> None:
    """Poll attempt ``attempt`` of the job once: record its outcome when it ended, poll again
    later (backing off) while it runs, cancel it past its timeout or once its run has ended,
    and spawn it when it was a retry waiting for its time."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or not _is_current(job, attempt):
            return
        with trace(job.trace_id or None):
            current = job.attempts[-1]
            if not current["function_call_id"]:
                _launch(job)
                return
            if job.execution_id and _run_ended(job.execution_id):
                _cancel(job, actor="system", reason="the workflow run ended")
                return
            backend = backend_for(job.endpoint)
            if timezone.now() > _deadline(job, current):
                backend.cancel(current["function_call_id"])
                timeout = job.endpoint.timeout
                _record_outcome(job, Failed("timeout", f"no result within {timeout} s"))
                return
            outcome: Outcome = backend.poll(current["function_call_id"])
            if isinstance(outcome, Pending):
                _enqueue_poll(job, attempt, polls + 1)
                return
            _record_outcome(job, outcome)


def cancel_job(job: ModalJob, *, actor: str = "system", reason: str = "cancelled") -> ModalJob:
    """Cancel the job's running call and end the job ``cancelled`` (charging the seconds it
    ran). ConflictError when it has ended already."""
    with transaction.atomic():
        locked = _locked(job.pk)
        if locked is None or locked.is_finished:
            raise ConflictError(f"The job is already {locked.status if locked else 'gone'}")
        with trace(locked.trace_id or None):
            _cancel(locked, actor=actor, reason=reason)
    return locked


# -- internals -----------------------------------------------------------------------------------


def _locked(job_id: uuid.UUID | str) -> ModalJob | None:
    return (
        ModalJob.objects.select_for_update(of=("self",))
        .select_related("endpoint", "tenant")
        .filter(pk=job_id)
        .first()
    )


def _is_current(job: ModalJob, attempt: int) -> bool:
    return (
        not job.is_finished
        and len(job.attempts) == attempt
        and job.attempts[-1].get("outcome") is None
    )


def _attempts_left(job: ModalJob) -> bool:
    return len(job.attempts) < 1 + job.endpoint.max_retries


def _backoff(setting_base: float, setting_max: float, exponent: int) -> float:
    return float(min(setting_max, setting_base * 2 ** max(0, exponent)))


def _plan(job: ModalJob, gpu: str, *, delay: float = 0.0) -> None:
    """Append the next attempt (on ``gpu``); with a ``delay`` it is spawned by a reconcile job
    then, else the caller launches it now."""
    n = len(job.attempts) + 1
    job.attempts = [
        *job.attempts,
        {
            "n": n,
            "gpu": gpu,
            "function_call_id": "",
            "outcome": None,
            "message": "",
            "started": None,
            "ended": None,
            "seconds": 0.0,
            "cost": "0",
        },
    ]
    job.gpu = gpu
    if delay > 0:
        job.save()
        _enqueue(job, {"attempt": n, "polls": 0}, delay)


def _launch(job: ModalJob, *, first: bool = False) -> None:
    """Hold the budget for the current attempt and spawn it. On the first attempt a refusal
    raises; on a retry it ends the job (or, for a transient spawn failure, plans another)."""
    attempt = job.attempts[-1]
    n, gpu = attempt["n"], attempt["gpu"]
    try:
        hold = metering.hold(job, gpu, n)
    except BudgetExceeded as exc:
        if first:
            raise
        attempt.update(outcome="budget_exceeded", message=exc.message)
        _finish(job, Status.FAILED, error=exc.message, kind="budget_exceeded")
        return
    try:
        call_id = backend_for(job.endpoint).spawn(
            job.input,
            gpu=gpu,
            idempotency_key=job.idempotency_key,
            callback_url=callback_url(job.pk, n, job.endpoint.timeout),
            job_id=str(job.pk),
        )
    except SpawnFailed as exc:
        metering.release(hold)
        if first:
            raise
        attempt.update(outcome="spawn_failed", message=exc.message)
        if exc.kind == "transient" and _attempts_left(job):
            _plan(job, gpu, delay=_retry_delay(n))
        else:
            _finish(job, Status.FAILED, error=exc.message, kind="spawn_failed")
        return
    now = timezone.now()
    attempt.update(function_call_id=call_id, started=now.isoformat(), hold=hold)
    job.function_call_id = call_id
    job.started_at = job.started_at or now
    if job.status == Status.PENDING:
        job.transition_to(Status.RUNNING)
    job.save()
    _enqueue_poll(job, n, 0)


def _retry_delay(attempt: int) -> float:
    return _backoff(
        float(modal_settings.RETRY_BASE_SECONDS),
        float(modal_settings.RETRY_MAX_SECONDS),
        attempt - 1,
    )


def _enqueue_poll(job: ModalJob, attempt: int, polls: int) -> None:
    delay = _backoff(
        float(modal_settings.POLL_INITIAL_SECONDS), float(modal_settings.POLL_MAX_SECONDS), polls
    )
    _enqueue(job, {"attempt": attempt, "polls": polls}, delay)


def _enqueue(job: ModalJob, payload: dict[str, Any], delay: float) -> None:
    store.enqueue(
        RECONCILE_JOB,
        {"job": str(job.pk), **payload},
        tenant=job.tenant_id,
        available_at=timezone.now() + dt.timedelta(seconds=delay),
        trace_id=job.trace_id or None,
    )


def _deadline(job: ModalJob, attempt: dict[str, Any]) -> dt.datetime:
    started = dt.datetime.fromisoformat(attempt["started"])
    grace = int(modal_settings.TIMEOUT_GRACE_SECONDS)
    return started + dt.timedelta(seconds=job.endpoint.timeout + grace)


def _run_ended(execution_id: uuid.UUID | str) -> bool:
    status = Execution.objects.filter(pk=execution_id).values_list("status", flat=True).first()
    return status is None or status in {
        Execution.Status.COMPLETED,
        Execution.Status.FAILED,
        Execution.Status.CANCELLED,
    }


def _charge(job: ModalJob, attempt: dict[str, Any]) -> None:
    """End the attempt's clock and charge its seconds (settling its hold)."""
    now = timezone.now()
    started = dt.datetime.fromisoformat(attempt["started"])
    seconds = max(0.0, (now - started).total_seconds())
    price = price_for(attempt["gpu"])
    cost = metering.charge(attempt.get("hold"), price, seconds)
    attempt.update(ended=now.isoformat(), seconds=round(seconds, 3), cost=str(cost))
    job.gpu_seconds += seconds
    job.cost = Decimal(job.cost) + cost
    job.pricing_version = price.version


def _record_outcome(job: ModalJob, outcome: Done | Failed) -> None:
    attempt = job.attempts[-1]
    _charge(job, attempt)
    if isinstance(outcome, Done):
        attempt["outcome"] = "succeeded"
        job.output = _stored_output(job, outcome.output)
        _finish(job, Status.SUCCEEDED)
        return
    attempt.update(outcome=outcome.kind, message=outcome.message[:2000])
    gpu = attempt["gpu"]
    if outcome.kind == "timeout":
        _finish(job, Status.TIMED_OUT, error=outcome.message, kind="timeout")
        return
    if _attempts_left(job) and outcome.kind in ("oom", "preempted"):
        escalated = _next_gpu(job, gpu)
        if escalated is not None:
            _plan(job, escalated)
            _launch(job)
            return
    if _attempts_left(job) and outcome.kind in ("transient", "preempted"):
        _plan(job, gpu, delay=_retry_delay(attempt["n"]))
        return
    _finish(job, Status.FAILED, error=outcome.message, kind=outcome.kind)


def _stored_output(job: ModalJob, output: Any) -> Any:
    """The output to keep on the job: itself, or when large a reference to the
    ``output.json`` artifact it is stored in."""
    data = json.dumps(output, default=str).encode()
    if len(data) <= int(modal_settings.OUTPUT_INLINE_MAX_BYTES):
        return output
    artifact = ModalArtifact(
        tenant_id=job.tenant_id,
        job=job,
        name="output.json",
        content_type="application/json",
        size=len(data),
    )
    artifact.file.save("output.json", ContentFile(data), save=False)
    artifact.save()
    return {"artifact": {"id": str(artifact.pk), "name": artifact.name, "size": artifact.size}}


def _next_gpu(job: ModalJob, gpu: str) -> str | None:
    ladder = job.endpoint.gpu_ladder
    index = ladder.index(gpu) if gpu in ladder else -1
    return ladder[index + 1] if index + 1 < len(ladder) else None


def _cancel(job: ModalJob, *, actor: str, reason: str) -> None:
    attempt = job.attempts[-1] if job.attempts else None
    if attempt is not None and attempt.get("outcome") is None:
        if attempt["function_call_id"]:
            backend_for(job.endpoint).cancel(attempt["function_call_id"])
            _charge(job, attempt)
        attempt.update(outcome="cancelled", message=reason)
    _finish(job, Status.CANCELLED, error=reason, kind="cancelled", actor=actor)


def _finish(
    job: ModalJob, status: str, *, error: str = "", kind: str = "", actor: str = "system"
) -> None:
    """End the job; in the same transaction roll its cost into its run, audit it and wake the
    run waiting on it."""
    job.transition_to(status)
    job.ended_at = timezone.now()
    job.error, job.error_kind = error[:8000], kind
    job.save()
    audit.record(
        AUDIT_ACTION,
        actor=actor,
        tenant=job.tenant,
        target=f"modal_job:{job.pk}",
        data={
            "endpoint": job.endpoint.slug,
            "status": job.status,
            "error_kind": kind,
            "attempts": [
                {"gpu": a["gpu"], "outcome": a["outcome"], "seconds": a["seconds"]}
                for a in job.attempts
            ],
            "gpu_seconds": round(job.gpu_seconds, 3),
            "cost": str(job.cost),
            "pricing_version": job.pricing_version,
            "execution_id": str(job.execution_id or ""),
            "step_id": job.step_id,
        },
    )
    if job.execution_id:
        if job.attempts and any(a.get("started") for a in job.attempts):
            add_usage(job.execution_id, {"cost": job.cost})
        engine.signal(signal_name(job.pk), {}, execution=str(job.execution_id))
