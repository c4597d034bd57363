"""Operations on Modal jobs: what other apps, the API, the admin and the ``modal.run`` step call.

Guarantees:

* :func:`spawn_job` is idempotent on its ``idempotency_key`` (a second call returns the first
  job). It holds the attempt's worst case on the budgets before anything is spawned; a refused
  budget raises and leaves nothing behind.
* The intent comes first: an attempt is spawned only after a transaction that recorded the job,
  the attempt's hold and an *orphan check* committed. ``spawn_job(defer=True)`` (the step)
  records the job in the caller's transaction and the ``modal.spawn`` outbox job spawns it after
  that commit; called outside a transaction, ``spawn_job`` commits the intent and spawns at once.
  A spawn and the record of its call id commit together, so a crash between them leaves an
  attempt with an intent and no call id: the orphan check finds it ``ORPHAN_AFTER_SECONDS`` after
  the intent, marks it ``lost`` (releasing its hold) and spawns a new attempt. The orphan
  itself cannot be cancelled or polled (Modal looks calls up by id only, and its id was never
  recorded): it runs until it returns or reaches the endpoint's timeout, which Modal enforces.
  It may still report through its callback: before that check as any attempt does; after it,
  an output it reports while the job has no result is the job's (the attempt in its place is
  cancelled) and its seconds are charged, and its failures and any report once the job has
  ended are refused. So a crash costs at most one extra spawn, and every job still ends with
  exactly one recorded result.
* A job ends once: :func:`complete_job` (the completion callback) and :func:`reconcile` (the
  poll) lock the job's row and act only on the current attempt while it has no outcome, so a
  late or replayed report changes nothing.
* Every attempt that ran is charged the seconds it ran at its GPU's price (settling its hold),
  whatever its outcome; a lost orphan only if its output is adopted (else its seconds are
  unknown). An ``oom`` or ``preempted`` attempt is retried on the next GPU of the
  endpoint's ladder (``gpu`` then ``gpu_fallbacks``); ``transient`` ones on the same GPU after
  a backoff; both within ``1 + max_retries`` attempts (``lost`` ones are not counted). A call
  still running past the endpoint's timeout (plus ``TIMEOUT_GRACE_SECONDS``) is cancelled and
  the job is ``timed_out``.
* An output larger than ``OUTPUT_INLINE_MAX_BYTES`` is stored as a ``ModalArtifact``
  (``output.json``, through Django's storage API); the job's output then references it.
* When a job of a workflow run ends, in the same transaction: its cost and GPU seconds are added
  to the run's usage, an audit row is written, and the run waiting on ``modal:<job id>`` is
  signalled.
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
    "SPAWN_JOB",
    "BudgetExceeded",
    "cancel_job",
    "complete_job",
    "get_endpoint",
    "get_job",
    "intend",
    "reconcile",
    "run_ended",
    "signal_name",
    "spawn_intended",
    "spawn_job",
]

#: The outbox job kind that polls a running call (``automate_modal.tasks``).
RECONCILE_JOB = "modal.reconcile"
#: The outbox job kind that spawns a planned attempt, or checks an intent for an orphan.
SPAWN_JOB = "modal.spawn"
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
    defer: bool = False,
) -> ModalJob:
    """Spawn a job of ``endpoint`` on its first GPU and return it.

    Without ``defer`` the intent commits first and the function is spawned at once: call it
    outside a transaction (an enclosing one would hold the intent back until after the spawn).
    The job comes back ``running``; ``SpawnFailed`` (503; ``kind`` says whether trying later may
    work) leaves nothing behind. With ``defer`` the job is recorded ``pending`` in the caller's
    transaction and spawned by the outbox once that commits (a failed spawn then fails the job).
    Either way ``BudgetExceeded`` (402) means nothing was recorded or spawned."""
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
    with trace(job.trace_id or None):
        with transaction.atomic():
            job.save(force_insert=True)
            _plan(job, endpoint.gpu, spawn=False)
            _hold(job, first=True)
            if defer:
                job.save()
                _enqueue_spawn(job, 1, 0.0)
            else:
                _mark_intent(job)
        if defer:
            return job
        failed = spawn_intended(job.pk, 1, first=True)
    if failed is not None:
        raise failed
    return ModalJob.objects.select_related("endpoint", "tenant").get(pk=job.pk)


def intend(job_id: uuid.UUID | str, attempt: int) -> int | None:
    """Make attempt ``attempt`` ready to spawn, in the caller's transaction (which must commit
    before :func:`spawn_intended`): the attempt number to spawn then, or None for nothing to do.

    A planned attempt gets its budget hold, its intent and an orphan check. An attempt with an
    intent and no call id may have been spawned by a worker that died before recording it: once
    the intent is ``ORPHAN_AFTER_SECONDS`` old it is ``lost`` and a new attempt is intended in its
    place (one extra spawn at most); younger, the check is queued for then."""
    job = _locked(job_id)
    if job is None or not _is_current(job, attempt):
        return None
    current = job.attempts[-1]
    if current["function_call_id"]:
        return None
    with trace(job.trace_id or None):
        if job.execution_id and _run_ended(job.execution_id):
            _cancel(job, actor="system", reason="the workflow run ended")
            return None
        if current.get("intent_at") is None:
            if not _hold(job):
                return None
            _mark_intent(job)
            return attempt
        since = timezone.now() - dt.datetime.fromisoformat(current["intent_at"])
        wait = _orphan_after() - since.total_seconds()
        if wait > 0:
            _enqueue_spawn(job, attempt, wait)
            return None
        # Released, and kept: should the orphan's output still be adopted, settling the
        # released hold charges the budgets its seconds (a late settle still charges).
        metering.release(current.get("hold"))
        current.update(
            outcome="lost",
            ended=timezone.now().isoformat(),
            message="spawned by a worker that stopped before recording the call; spawned again",
        )
        _plan(job, current["gpu"], spawn=False)
        if not _hold(job):
            return None
        _mark_intent(job)
        return attempt + 1


def spawn_intended(
    job_id: uuid.UUID | str, attempt: int, *, first: bool = False
) -> SpawnFailed | None:
    """Spawn attempt ``attempt``, whose intent has committed, and record its call id, in one
    transaction (the caller's, if any). A failed spawn releases the hold and plans a retry or
    ends the job; on the ``first`` attempt of :func:`spawn_job` it removes the job instead and
    returns the failure for the caller to raise."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or not _is_current(job, attempt):
            return None
        current = job.attempts[-1]
        if current["function_call_id"] or current.get("intent_at") is None:
            return None
        with trace(job.trace_id or None):
            try:
                call_id = backend_for(job.endpoint).spawn(
                    job.input,
                    gpu=current["gpu"],
                    idempotency_key=job.idempotency_key,
                    callback_url=callback_url(job.pk, attempt, job.endpoint.timeout),
                    job_id=str(job.pk),
                )
            except SpawnFailed as exc:
                metering.release(current.pop("hold", None))
                if first:
                    job.delete()
                    return exc
                _spawn_failed(job, exc)
                return None
            now = timezone.now()
            current.update(function_call_id=call_id, started=now.isoformat())
            job.function_call_id = call_id
            job.started_at = job.started_at or now
            if job.status == Status.PENDING:
                job.transition_to(Status.RUNNING)
            job.save()
            _enqueue_poll(job, attempt, 0)
    return None


def complete_job(job_id: uuid.UUID | str, *, attempt: int, outcome: Done | Failed) -> bool:
    """Record the outcome of attempt ``attempt`` (from its completion callback). False, and
    nothing changed, when the job has ended or that attempt has an outcome already, except
    that an output from a ``lost`` attempt is still the job's result while it has none (the
    attempt spawned in its place is then cancelled)."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None:
            return False
        with trace(job.trace_id or None):
            if _is_current(job, attempt):
                _record_outcome(job, outcome)
                return True
            if isinstance(outcome, Done) and _is_lost(job, attempt):
                _adopt_lost_output(job, attempt, outcome)
                return True
    return False


def reconcile(job_id: uuid.UUID | str, *, attempt: int, polls: int = 0) -> None:
    """Poll attempt ``attempt`` of the job once: record its outcome when it ended, poll again
    later (backing off) while it runs, and cancel it past its timeout or once its run has
    ended."""
    with transaction.atomic():
        job = _locked(job_id)
        if job is None or not _is_current(job, attempt):
            return
        with trace(job.trace_id or None):
            current = job.attempts[-1]
            if not current["function_call_id"]:
                return  # not spawned yet: its ``modal.spawn`` job owns it
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


def run_ended(execution_id: uuid.UUID | str) -> None:
    """The workflow run ended: queue an immediate poll of each of its jobs still running, in
    the caller's transaction. The poll cancels the call (see :func:`reconcile`), so a
    cancelled run stops its GPU at once rather than at its next scheduled poll."""
    running = ModalJob.objects.filter(
        execution_id=execution_id, status__in=ModalJob.ACTIVE_STATUSES
    ).only("id", "tenant_id", "trace_id", "attempts")
    for job in running:
        _enqueue(job, {"attempt": len(job.attempts), "polls": 0}, 0.0)


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


def _is_lost(job: ModalJob, attempt: int) -> bool:
    return (
        not job.is_finished
        and 1 <= attempt <= len(job.attempts)
        and job.attempts[attempt - 1].get("outcome") == "lost"
    )


def _adopt_lost_output(job: ModalJob, attempt: int, outcome: Done) -> None:
    """The orphan of a lost attempt reported its output after all: it is the job's result,
    and the attempt running in its place is cancelled. The orphan's seconds (from its intent,
    its start being unknown) are charged to the job and, through its released hold, to the
    budgets."""
    current = job.attempts[-1]
    if current.get("outcome") is None:
        if current["function_call_id"]:
            backend_for(job.endpoint).cancel(current["function_call_id"])
            _charge(job, current)
        else:
            metering.release(current.pop("hold", None))
        current.update(outcome="cancelled", message=f"attempt {attempt} reported first")
    lost = job.attempts[attempt - 1]
    _charge(job, lost)
    lost.update(outcome="succeeded", message="reported after it was declared lost")
    if job.status == Status.PENDING:
        job.transition_to(Status.RUNNING)
    job.output = _stored_output(job, outcome.output)
    _finish(job, Status.SUCCEEDED)


def _attempts_left(job: ModalJob) -> bool:
    counted = [a for a in job.attempts if a.get("outcome") != "lost"]
    return len(counted) < 1 + job.endpoint.max_retries


def _orphan_after() -> float:
    return float(modal_settings.ORPHAN_AFTER_SECONDS)


def _backoff(setting_base: float, setting_max: float, exponent: int) -> float:
    return float(min(setting_max, setting_base * 2 ** max(0, exponent)))


def _plan(job: ModalJob, gpu: str, *, delay: float = 0.0, spawn: bool = True) -> None:
    """Append the next attempt (on ``gpu``) and save the job; with ``spawn`` a ``modal.spawn``
    job spawns it after ``delay`` seconds, else the caller intends it."""
    n = len(job.attempts) + 1
    job.attempts = [
        *job.attempts,
        {
            "n": n,
            "gpu": gpu,
            "function_call_id": "",
            "intent_at": None,
            "outcome": None,
            "message": "",
            "started": None,
            "ended": None,
            "seconds": 0.0,
            "cost": "0",
        },
    ]
    job.gpu = gpu
    if spawn:
        job.save()
        _enqueue_spawn(job, n, delay)


def _hold(job: ModalJob, *, first: bool = False) -> bool:
    """Hold the budget for the current attempt (once). A refusal raises on the ``first``
    attempt; on a retry it ends the job and returns False."""
    attempt = job.attempts[-1]
    if attempt.get("hold"):
        return True
    try:
        attempt["hold"] = metering.hold(job, attempt["gpu"], attempt["n"])
    except BudgetExceeded as exc:
        if first:
            raise
        attempt.update(outcome="budget_exceeded", message=exc.message)
        _finish(job, Status.FAILED, error=exc.message, kind="budget_exceeded")
        return False
    return True


def _mark_intent(job: ModalJob) -> None:
    """Record that the current attempt is about to be spawned, with its orphan check."""
    attempt = job.attempts[-1]
    attempt["intent_at"] = timezone.now().isoformat()
    job.save()
    _enqueue_spawn(job, attempt["n"], _orphan_after())


def _spawn_failed(job: ModalJob, exc: SpawnFailed) -> None:
    attempt = job.attempts[-1]
    attempt.update(outcome="spawn_failed", message=exc.message)
    if exc.kind == "transient" and _attempts_left(job):
        _plan(job, attempt["gpu"], delay=_retry_delay(attempt["n"]))
    else:
        _finish(job, Status.FAILED, error=exc.message, kind="spawn_failed")


def _enqueue_spawn(job: ModalJob, attempt: int, delay: float) -> None:
    store.enqueue(
        SPAWN_JOB,
        {"job": str(job.pk), "attempt": attempt},
        tenant=job.tenant_id,
        available_at=timezone.now() + dt.timedelta(seconds=delay),
        trace_id=job.trace_id or None,
    )


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
    # An orphan reporting through its callback has no recorded start: time it from its intent.
    started = dt.datetime.fromisoformat(attempt["started"] or attempt["intent_at"])
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
    if job.status == Status.PENDING:  # an orphan's report: it ran after all
        job.transition_to(Status.RUNNING)
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
        else:  # not spawned (or an orphan we cannot name): nothing ran that we know of
            metering.release(attempt.pop("hold", None))
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
            add_usage(job.execution_id, {"cost": job.cost, "gpu_seconds": job.gpu_seconds})
        engine.signal(signal_name(job.pk), {}, execution=str(job.execution_id))
