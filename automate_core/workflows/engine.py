"""The workflow engine: start runs, run their steps as outbox jobs, deliver signals and events.

What is guaranteed:

- ``start`` writes the Execution and its first job in the caller's transaction (one statement;
  an event that already started the workflow writes nothing). Started inside a worker's job,
  the first step job is handed to that worker, which runs it next with no claim.
- Each step visit commits in one transaction: the StepRun checkpoint, the new context, the
  run's next state and the job's progress (the next visit, or done) are one statement that
  applies only if the run is still where the visit found it (same ``seq`` and status) and the
  job is still held under the lease's fencing token. A worker that lost its lease commits
  nothing; a run cancelled while its step ran stays cancelled and that visit is not recorded.
- A StepRun is completed at most once; a redelivered or late job for a visit the run has moved
  past does nothing. Steps are at-least-once (a crash mid-step re-runs it); side effects are
  effectively-once through ``call.idempotency_key`` (``execution:step``, stable across retries).
- Timers (sleep, wait timeouts, offsets) are jobs with a future ``available_at``: they live in
  the database, not in a process.
- A visit that cannot be checkpointed (an output or context that is not JSON, a value the
  database refuses) fails its run, with the error on its StepRun: a run is never left queued
  with nothing to show.
"""

from __future__ import annotations

import time
import traceback
import uuid
from collections.abc import Mapping
from datetime import timedelta
from functools import lru_cache
from typing import Any

from django.db import InterfaceError, OperationalError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from automate_core.conf import automate_settings
from automate_core.discovery import discover_automations
from automate_core.errors import ConflictError, NotFoundError
from automate_core.events.ingest import EVENT_JOB
from automate_core.events.models import Event
from automate_core.executions import store as runs
from automate_core.executions.models import Execution, StepRun
from automate_core.executions.store import LoadedRun
from automate_core.governance.egress import EgressDenied
from automate_core.governance.redaction import redact_text, scrub_secret_values, secret_scope
from automate_core.outbox import store
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease, LeaseLost
from automate_core.rules.jsonlogic import apply as jsonlogic_apply
from automate_core.tenancy.models import Tenant
from automate_core.tracing import current_trace_id, new_trace_id, trace
from automate_core.workflows import registry
from automate_core.workflows.compiled import CompiledWorkflow, StepCall
from automate_core.workflows.flow import (
    Complete,
    Fail,
    Goto,
    Sleep,
    Transition,
    WaitEvent,
    WaitSignal,
    transition_to_dict,
)
from automate_core.workflows.graph import compile_graph
from automate_core.workflows.models import Automation, WorkflowVersion

STEP_JOB = "workflow.step"
# The signals that wake ``wait_for_event(name)`` waits: ``engine.signal("event:<name>", ...)``.
EVENT_SIGNAL_PREFIX = "event:"
# Visits one step job runs back to back before handing the run to a fresh job.
INLINE_STEPS = 20
TIMEOUT_JOB = "workflow.timeout"

Status = Execution.Status


class WorkflowNotFound(NotFoundError):
    code = "workflow_not_found"


def discover_workflows() -> None:
    """Make sure every app's code-first workflows are registered (done at app ready)."""
    discover_automations()


# -- resolving what to run -----------------------------------------------------------------------


def compiled_for(execution: Execution) -> CompiledWorkflow:
    """The pinned version of a run: its WorkflowVersion, or the registered code workflow."""
    if execution.workflow_version_id:
        return _compiled_version(execution.workflow_version_id, execution.workflow_name)
    discover_workflows()
    compiled = registry.get(execution.workflow_name)
    if compiled is None:
        raise WorkflowNotFound(f"No workflow named {execution.workflow_name!r} is registered")
    return compiled


@lru_cache(maxsize=512)
def _compiled_version(version_id: Any, name: str) -> CompiledWorkflow:
    """Published versions never change, so each is compiled once per process."""
    version = WorkflowVersion.objects.only("graph", "digest").get(pk=version_id)
    return compile_graph(version.graph, name=name, version=version.digest)


def _resolve(
    name: str, tenant: Any, version: WorkflowVersion | None
) -> tuple[CompiledWorkflow, WorkflowVersion | None]:
    if version is not None:
        if not version.is_published:
            raise ConflictError(f"{version} is a draft; publish it before running it")
        return _compiled_version(version.pk, name), version
    if tenant is not None:
        automation = Automation.objects.for_tenant(tenant).filter(slug=name).first()
        if automation is not None:
            live = automation.live_version
            if live is None:
                raise ConflictError(f"Automation {name!r} has no live version; publish one first")
            return _compiled_version(live.pk, name), live
    discover_workflows()
    compiled = registry.get(name)
    if compiled is None:
        raise WorkflowNotFound(f"No workflow or automation named {name!r}")
    return compiled, None


# -- public operations ---------------------------------------------------------------------------


def start(
    name: str,
    *,
    tenant: Any = None,
    event: Event | None = None,
    version: WorkflowVersion | None = None,
    trace_id: str | None = None,
    run_at: Any = None,
    **kwargs: Any,
) -> Execution:
    """Start a run of ``name`` (a code workflow or an automation slug of ``tenant``).

    A run for the same event and workflow is started once; a second call returns it.
    """
    compiled, pinned = _resolve(name, tenant, version)
    trace_id = (
        trace_id
        or (event.trace_id if event is not None else None)
        or current_trace_id()
        or new_trace_id()
    )
    now = timezone.now()
    waiting = run_at is not None and run_at > now
    execution = Execution(
        created_at=now,
        tenant_id=getattr(tenant, "pk", tenant) or (event.tenant_id if event else None),
        workflow_name=name,
        workflow_version=pinned,
        version=compiled.version,
        event=event,
        status=Status.WAITING if waiting else Status.QUEUED,
        current_step=compiled.start,
        context=compiled.initial_context(kwargs, event),
        wake_at=run_at if waiting else None,
        trace_id=trace_id,
    )
    first_job = store.new_job(
        STEP_JOB,
        _step_payload(execution, compiled.start),
        tenant_id=execution.tenant_id,
        trace_id=trace_id,
        available_at=run_at if waiting else None,
        handoff=True,  # a worker starting the run runs it next, with no claim
    )
    # The run and its job are one statement (no savepoint needed inside a caller's
    # transaction); an event that already started this workflow writes nothing.
    with transaction.atomic(savepoint=False):
        if not runs.create_run(execution, first_job):
            return Execution.objects.get(event=event, workflow_name=name)
    return execution


def signal(
    name: str,
    payload: Mapping[str, Any] | None = None,
    *,
    execution: Execution | str | None = None,
    tenant: Any = None,
) -> list[Execution]:
    """Deliver signal ``name`` to one run (``execution``) or to every run of ``tenant`` waiting
    for it; with both, only if the run is the tenant's. The payload merges into Context fields
    that exist. Returns the runs resumed.

    With neither, the signal goes to the runs of the install's default tenant
    (``AUTOMATE["DEFAULT_TENANT"]``, or the only tenant there is) and to runs that belong to no
    tenant; with several tenants and no default it is refused (ValueError saying what to pass).
    ``"event:<name>"`` also wakes ``wait_for_event("<name>")`` waits, any entity's (a wait's
    ``match`` is checked against ``{event, payload}``).
    """
    waits = Q(waiting_for__kind="signal", waiting_for__name=name)
    if name.startswith(EVENT_SIGNAL_PREFIX):
        waits |= Q(waiting_for__kind="event", waiting_for__name=name[len(EVENT_SIGNAL_PREFIX) :])
    waiting = Execution.objects.filter(waits, status=Status.WAITING)
    if execution is not None:
        waiting = waiting.filter(pk=getattr(execution, "pk", execution))
    if tenant is not None:
        waiting = waiting.for_tenant(tenant)
    elif execution is None:
        default = _default_tenant(name)
        waiting = waiting.filter(Q(tenant_id__isnull=True) | Q(tenant_id=default))
    payload = dict(payload or {})
    scope = {"event": {"type": name, "payload": payload}, "payload": payload}
    resumed = []
    with transaction.atomic():
        for run in waiting.select_for_update(skip_locked=False).order_by("created_at"):
            match = (run.waiting_for or {}).get("match")
            if match is not None and not jsonlogic_apply(match, scope):
                continue
            _deliver(run, payload)
            resumed.append(run)
    return resumed


def _default_tenant(signal_name: str) -> Any:
    """The tenant a signal with no tenant is for: ``AUTOMATE["DEFAULT_TENANT"]`` (a slug or
    an id), else the only tenant (None when there is none)."""
    configured = automate_settings.DEFAULT_TENANT
    if configured:
        by = Q(slug=str(configured))
        if _is_uuid(configured):
            by |= Q(pk=configured)
        found = Tenant.objects.filter(by).values_list("pk", flat=True).first()
        if found is None:
            raise ValueError(f"AUTOMATE['DEFAULT_TENANT'] = {configured!r} names no tenant")
        return found
    tenants = list(Tenant.objects.values_list("pk", flat=True)[:2])
    if len(tenants) > 1:
        raise ValueError(
            f"engine.signal({signal_name!r}) needs a tenant: this install has several. Pass "
            "tenant=<a Tenant or its id> (or execution=<the run>), or set "
            "AUTOMATE['DEFAULT_TENANT'] to the slug of the tenant signals go to by default."
        )
    return tenants[0] if tenants else None


def _is_uuid(value: Any) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


def handle_event_occurred(event: Event) -> list[Execution]:
    """Start every workflow the event triggers and resume runs waiting for it."""
    return _handle_event_occurred(event, resume_waiters=True)


def _handle_event_occurred(event: Event, *, resume_waiters: bool) -> list[Execution]:
    from automate_core.rules.matching import matching_triggers

    started = []
    for trigger in matching_triggers(event):
        started.append(
            start(
                trigger.automation.slug,
                tenant=event.tenant_id,
                event=event,
                version=trigger.version or trigger.automation.live_version,
            )
        )
    started.extend(start_event_workflows(event))
    if resume_waiters:
        _resume_event_waiters(event)
    return started


def start_event_workflows(event: Event) -> list[Execution]:
    """Start the code-first workflows of ``event``'s type, each ``offset_minutes`` from the
    event's time: a time already past runs at once, a future one waits (status ``waiting``)."""
    discover_workflows()
    return [
        start(
            compiled.name,
            tenant=event.tenant_id,
            event=event,
            run_at=event.occurs_at + timedelta(minutes=compiled.offset_minutes),
        )
        for compiled in registry.for_event(event.type)
    ]


def _not_started(event: Event) -> Any:
    """Runs of ``event`` still waiting for their start time (no step has run)."""
    started = StepRun.objects.filter(execution=OuterRef("pk"))
    return (
        Execution.objects.select_for_update()
        .filter(event=event, status=Status.WAITING, waiting_for__isnull=True)
        .exclude(Exists(started))
    )


def reschedule_event_runs(event: Event) -> None:
    """The event's time moved: runs waiting to start move with it."""
    for run in _not_started(event):
        compiled = compiled_for(run)
        run_at = event.occurs_at + timedelta(minutes=compiled.offset_minutes)
        run.seq += 1  # the old start job is now stale
        if run_at > timezone.now():
            run.wake_at = run_at
        else:
            run.move_to(Status.QUEUED)
            run.wake_at = None
        run.save()
        _enqueue_step(run, run.current_step, available_at=run.wake_at)


def cancel_event_runs(event: Event) -> None:
    """The event was cancelled: runs waiting to start for it are cancelled too."""
    for run in _not_started(event):
        _finish(run, Status.CANCELLED, error="the event was cancelled")


def cancel(execution: Execution) -> Execution:
    with transaction.atomic():
        run = Execution.objects.select_for_update().get(pk=execution.pk)
        if run.is_finished:
            raise ConflictError(f"Execution is already {run.status}")
        _finish(run, Status.CANCELLED, error="cancelled")
    return run


def retry(execution: Execution) -> Execution:
    """Resume a failed run from the step that failed; completed steps are not re-run."""
    with transaction.atomic():
        run = Execution.objects.select_for_update().get(pk=execution.pk)
        if run.status != Status.FAILED:
            raise ConflictError(f"Only failed executions can be retried; this one is {run.status}")
        run.seq += 1
        run.move_to(Status.QUEUED)
        run.error, run.finished_at = "", None
        run.save(update_fields=["seq", "status", "error", "finished_at", "updated_at"])
        _enqueue_step(run, run.current_step)
    return run


def replay(execution: Execution, *, version: WorkflowVersion | None = None) -> Execution:
    """A new run with the same start input, on ``version`` (default: the same version)."""
    if not execution.is_finished:
        raise ConflictError("Only finished executions can be replayed")
    pinned = version or execution.workflow_version
    name = execution.workflow_name
    compiled, _ = _resolve(name, execution.tenant_id, pinned)
    first = execution.steps.order_by("seq").first()
    with transaction.atomic():
        run = Execution.objects.create(
            tenant_id=execution.tenant_id,
            workflow_name=name,
            workflow_version=pinned,
            version=compiled.version,
            current_step=compiled.start,
            context=(first.input or {}).get("context", execution.context)
            if first
            else execution.context,
            trace_id=new_trace_id(),
        )
        _enqueue_step(run, compiled.start)
    return run


# -- outbox handlers -----------------------------------------------------------------------------


@outbox_handler(STEP_JOB, commits=True)
def run_step_job(job: Lease) -> None:
    """Run a visit, then the visits that follow it at once, each in its own transaction.

    Every visit commits its checkpoint together with the job's progress (the payload moves to
    the next visit, under the lease's fencing token) in one statement that first checks the run
    is still where the visit found it; so a crash resumes at the first visit not committed, a
    worker that lost its lease commits nothing, and a run cancelled meanwhile keeps its cancel.
    The first visit reads the run, its event and its history; the visits after it work from
    memory. A wait, a sleep, the end of the run or ``INLINE_STEPS`` visits end the chain; the
    last transaction completes the job.
    """
    payload = dict(job.payload)
    loaded: LoadedRun | None = None
    for _ in range(INLINE_STEPS):
        # Read outside the visit's transaction: no lock is held, the checkpoint checks instead.
        loaded = loaded or runs.load(payload["execution"])
        if loaded is None or not _is_due(loaded.run, payload):
            store.complete(job)  # the run moved on (or is gone): a late job does nothing
            return
        run = loaded.run
        try:
            with transaction.atomic():
                # Secrets a step resolves are registered in this scope: scrubbed from what is
                # stored and forgotten when the step ends.
                with trace(run.trace_id or None), secret_scope():
                    visit = _run_step(loaded, payload["step"])
                if visit is None:
                    store.complete(job)  # checkpointed already, with the job that follows it
                    return
                step_run, following = visit
                advance_to = None
                if following is not None:
                    advance_to = {**payload, "seq": following[0], "step": following[1]}
                run.updated_at = timezone.now()
                runs.checkpoint(loaded, step_run, job, advance_to=advance_to)
        except runs.RunMoved:
            loaded = None  # someone else moved the run during the step: read it again
            continue
        except (LeaseLost, OperationalError, InterfaceError):
            raise  # the outbox retries the job (or a worker holding the lease does)
        except Exception as exc:
            _fail_unrecordable_visit(job, payload, exc)
            return
        if advance_to is None:
            return
        payload = advance_to
    with transaction.atomic():  # a long chain goes on in a fresh job
        store.complete(job)
        store.enqueue(STEP_JOB, payload, tenant=job.tenant_id, trace_id=job.trace_id or None)


def _fail_unrecordable_visit(job: Lease, payload: Mapping[str, Any], exc: Exception) -> None:
    """The visit ``payload`` ran but could not be checkpointed (its writes rolled back): fail
    the run, with the error on the visit's StepRun, and complete the job, in one transaction.
    Retrying would fail the same way, and a run left queued would show nothing."""
    step_id = payload["step"]
    error = f"step {step_id!r} could not be checkpointed: {type(exc).__name__}: {exc}"
    with transaction.atomic():
        run = Execution.objects.select_for_update().filter(pk=payload["execution"]).first()
        if run is not None and not run.is_finished and run.seq == payload["seq"]:
            now = timezone.now()
            step_run = run.steps.filter(seq=run.seq).first()
            if step_run is None:
                visits = run.steps.filter(step_id=step_id).count()
                step_run = StepRun(
                    execution=run,
                    seq=run.seq,
                    step_id=step_id,
                    idempotency_key=f"{run.pk}:{step_id}" + (f":{visits + 1}" if visits else ""),
                    trace_id=run.trace_id,
                    started_at=now,
                )
            step_run.attempt += 1
            step_run.status, step_run.finished_at = StepRun.Status.FAILED, now
            step_run.output, step_run.transition = None, None
            step_run.error = redact_text(_describe(exc))
            step_run.save()
            run.current_step = step_id
            _finish(run, Status.FAILED, error=redact_text(error)[:8000])
        store.complete(job)


def _is_due(run: Execution, payload: Mapping[str, Any]) -> bool:
    """Whether the visit ``payload`` names is the one the run waits for."""
    return not run.is_finished and run.seq == payload["seq"]


@outbox_handler(TIMEOUT_JOB)
def run_timeout_job(job: Lease) -> None:
    run = Execution.objects.select_for_update().filter(pk=job.payload["execution"]).first()
    if run is None or run.status != Status.WAITING or run.seq != job.payload["seq"]:
        return  # the signal or event came first
    waiting_for = run.waiting_for or {}
    target = waiting_for.get("on_timeout")
    if target is None:
        _finish(
            run,
            Status.FAILED,
            error=f"timed out waiting for {waiting_for.get('kind')} {waiting_for.get('name')!r}",
        )
        return
    _resume(run, target)


@outbox_handler(EVENT_JOB)
def run_event_job(job: Lease) -> None:
    from automate_core.events.scheduling import run_occurred_hooks

    event, has_waiters = runs.event_for_job(job.payload["event"])
    if event is not None and event.status == Event.Status.OCCURRED:
        with trace(event.trace_id or None):
            _handle_event_occurred(event, resume_waiters=has_waiters)
            run_occurred_hooks(event)


# -- internals -----------------------------------------------------------------------------------


def _step_payload(run: Execution, step_id: str) -> dict[str, Any]:
    return {"execution": str(run.pk), "seq": run.seq, "step": step_id}


def _enqueue_step(run: Execution, step_id: str, *, available_at: Any = None) -> None:
    store.enqueue(
        STEP_JOB,
        _step_payload(run, step_id),
        tenant=run.tenant_id,
        available_at=available_at,
        trace_id=run.trace_id,
    )


def _run_step(
    loaded: LoadedRun, step_id: str
) -> tuple[StepRun | None, tuple[int, str] | None] | None:
    """Run one visit of ``step_id`` in memory: the StepRun to checkpoint (None when there is no
    step to run), and the visit to run next at once, if any. None when this visit was
    checkpointed already. The run is moved along in memory; the caller writes it."""
    run = loaded.run
    compiled = compiled_for(run)
    step = compiled.steps.get(step_id)
    if step is None:
        _mark_finished(
            run, Status.FAILED, error=f"step {step_id!r} does not exist in version {run.version}"
        )
        return None, None
    now = timezone.now()
    step_run = loaded.visit(run.seq)
    if step_run is None:
        visits = loaded.visits_of(step_id)
        key = f"{run.pk}:{step_id}" + (f":{visits + 1}" if visits else "")
        step_run = StepRun(
            id=uuid.uuid4(),
            created_at=now,
            execution_id=run.pk,
            seq=run.seq,
            step_id=step_id,
            idempotency_key=key,
            trace_id=run.trace_id,
        )
    elif step_run.status == StepRun.Status.COMPLETED:
        return None  # checkpointed already; the next job was written in the same transaction
    visit = step_run.idempotency_key
    step_run.attempt += 1
    step_run.started_at = step_run.started_at or now
    if run.status != Status.RUNNING:
        run.move_to(Status.RUNNING)
        run.started_at = run.started_at or now
    run.current_step, run.waiting_for, run.wake_at = step_id, None, None

    context = compiled.load_context(run.context)
    call = StepCall(
        execution_id=str(run.pk),
        step_id=step_id,
        attempt=step_run.attempt,
        idempotency_key=visit,
        context=context,
        event=loaded.event_scope,
        steps=loaded.outputs(),
        trace_id=run.trace_id,
        tenant_id=run.tenant_id,
    )
    step_run.input = {"context": compiled.dump_context(context)}
    started = time.perf_counter()
    try:
        result = step.run(call)
    except Exception as exc:  # a failing step is data: recorded, retried or failing the run
        step_run.duration_ms = int((time.perf_counter() - started) * 1000)
        step_run.error = _describe(exc)
        # The attempt's changes to the Context are kept: the next attempt (or engine.retry)
        # starts from them.
        run.context = scrub_secret_values(compiled.dump_context(context))
        if step_run.attempt < step.retry.max_attempts and _retryable(exc):
            step_run.status = StepRun.Status.RETRYING
            _enqueue_step(
                run, step_id, available_at=timezone.now() + step.retry.delay_for(step_run.attempt)
            )
            return step_run, None
        step_run.status, step_run.finished_at = StepRun.Status.FAILED, timezone.now()
        _mark_finished(
            run,
            Status.FAILED,
            error=f"step {step_id!r} failed after {step_run.attempt} attempt(s): {step_run.error}",
        )
        return step_run, None

    step_run.duration_ms = int((time.perf_counter() - started) * 1000)
    step_run.status, step_run.finished_at = StepRun.Status.COMPLETED, timezone.now()
    step_run.output = scrub_secret_values(result.output)
    step_run.transition = scrub_secret_values(transition_to_dict(result.transition))
    step_run.error = ""
    run.context = scrub_secret_values(compiled.dump_context(context))
    return step_run, _apply(run, compiled, step_id, result.transition, entity=loaded.entity)


def _retryable(exc: BaseException) -> bool:
    """Whether a failed attempt may be retried: an egress refusal is a policy decision, never
    retried, also when a connector wrapped it in its own error."""
    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return True
        if isinstance(seen, EgressDenied):
            return False
        seen = seen.__cause__ or seen.__context__
    return True


def _apply(
    run: Execution,
    compiled: CompiledWorkflow,
    step_id: str,
    transition: Transition | None,
    *,
    entity: str | None = None,
) -> tuple[int, str] | None:
    """Move the run along after a completed step. A step that follows at once is returned (the
    caller runs it in the same job); anything later is a job written with the checkpoint."""
    natural_next = compiled.steps[step_id].next
    if transition is None:
        transition = Goto(natural_next) if natural_next else Complete({})
    if isinstance(transition, Complete):
        _mark_finished(run, Status.COMPLETED, result=transition.result)
    elif isinstance(transition, Fail):
        _mark_finished(run, Status.FAILED, error=transition.reason)
    elif isinstance(transition, Goto):
        _mark_queued(run, transition.step)
        return run.seq, transition.step
    elif isinstance(transition, Sleep):
        wake_at = timezone.now() + transition.duration
        target = transition.then or natural_next
        if target is None:
            _mark_finished(run, Status.COMPLETED, result={})
            return None
        run.seq += 1
        run.move_to(Status.WAITING)
        run.wake_at, run.current_step = wake_at, target
        run.waiting_for = {"kind": "sleep", "until": wake_at.isoformat()}
        _enqueue_step(run, target, available_at=wake_at)
    else:
        _wait(run, transition, natural_next, entity=entity)
    return None


def _wait(
    run: Execution,
    transition: WaitSignal | WaitEvent,
    natural_next: str | None,
    *,
    entity: str | None = None,
) -> None:
    """Park the run (in memory) and write its timeout timer, if any. An event wait of a run
    started by an event about an entity records that entity (``"<content type id>:<id>"``):
    only an event about the same one wakes it, unless the wait has a ``match`` or broadcasts."""
    run.seq += 1
    run.move_to(Status.WAITING)
    run.waiting_for = {
        "kind": "signal" if isinstance(transition, WaitSignal) else "event",
        "name": transition.name,
        "then": transition.then or natural_next,
        "on_timeout": transition.on_timeout,
        "match": transition.match if isinstance(transition, WaitEvent) else None,
    }
    if (
        isinstance(transition, WaitEvent)
        and entity is not None
        and transition.match is None
        and not transition.broadcast
    ):
        run.waiting_for["entity"] = entity
    run.wake_at = timezone.now() + transition.timeout if transition.timeout else None
    if run.wake_at is not None:
        store.enqueue(
            TIMEOUT_JOB,
            {"execution": str(run.pk), "seq": run.seq},
            tenant=run.tenant_id,
            available_at=run.wake_at,
            trace_id=run.trace_id,
        )


def _deliver(run: Execution, payload: Mapping[str, Any]) -> None:
    """A waiting run got its signal or event: the payload merges into the Context fields that
    exist, and the run goes on at the wait's ``then``."""
    run.context = compiled_for(run).merge_into_context(run.context, payload)
    _resume(run, (run.waiting_for or {}).get("then"), payload=payload)


def _resume(run: Execution, target: str | None, payload: Any = None) -> None:
    if target is None:
        _finish(run, Status.COMPLETED, result=payload or {})
        return
    _advance(run, target)


def _advance(run: Execution, target: str) -> None:
    _mark_queued(run, target)
    run.save()
    _enqueue_step(run, target)


def _mark_queued(run: Execution, target: str) -> None:
    run.seq += 1
    run.move_to(Status.QUEUED)
    run.current_step, run.waiting_for, run.wake_at = target, None, None


def _finish(run: Execution, status: str, *, result: Any = None, error: str = "") -> None:
    _mark_finished(run, status, result=result, error=error)
    run.save()


def _mark_finished(run: Execution, status: str, *, result: Any = None, error: str = "") -> None:
    run.seq += 1  # any job still pending for this run is now stale
    run.move_to(status)
    run.result, run.error = scrub_secret_values(result), error
    run.finished_at, run.waiting_for, run.wake_at = timezone.now(), None, None


def _resume_event_waiters(event: Event) -> None:
    # Only the event's own tenant (an event with no tenant reaches only runs with no tenant).
    waiting = Execution.objects.filter(
        status=Status.WAITING,
        waiting_for__kind="event",
        waiting_for__name=event.type,
        **{"tenant_id": event.tenant_id},  # None matches only runs with no tenant
    )
    # A wait correlated with an entity is woken only by an event about that entity.
    about = runs.entity_key(event.content_type_id, event.object_id)
    waiting = waiting.filter(~Q(waiting_for__has_key="entity") | Q(waiting_for__entity=about or ""))
    scope = {"event": event.as_scope(), "payload": event.payload}
    with transaction.atomic(savepoint=False):
        for run in waiting.select_for_update().order_by("created_at"):
            match = (run.waiting_for or {}).get("match")
            if match is not None and not jsonlogic_apply(match, scope):
                continue
            _deliver(run, event.payload)


def _describe(exc: Exception) -> str:
    text = f"{type(exc).__name__}: {exc}"
    tail = "".join(traceback.format_exception(exc)[-3:])
    return redact_text(f"{text}\n{tail}")[:8000]
