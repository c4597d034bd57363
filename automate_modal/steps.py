"""The ``modal.run`` workflow step: spawn a GPU job and wait for it with no worker held.

In a JSON graph::

    {"type": "modal.run", "endpoint": "whisper",
     "input": {"audio_url": "{{ event.payload.url }}"},
     "on_timeout": "too_slow", "next": "summarise"}

The step records the job (its idempotency key is the step's, so a retried step finds its job)
in the same transaction as the run's move to ``waiting`` on the signal ``modal:<job id>``, and
returns; the ``modal.spawn`` outbox job spawns it once that has committed, so no spawn happens
that the database does not know of. No worker thread or process waits: the job's completion
callback or its reconcile poll signals the run, which visits the step again; that visit reads
the ended job and its output becomes ``steps.<id>.output``::

    {"output": <what the function returned>, "gpu_seconds": 12.4, "cost": "0.002753",
     "job_id": "...", "gpu": "A100-40GB", "status": "succeeded"}

A job that timed out goes to ``on_timeout`` when set; a failed, cancelled or timed-out job
otherwise fails the run with the job's error. The job's cost is in the run's ``usage``.

Code-first workflows call :func:`run` in a ``@step`` and return what it returns (the wait), then
read the job in the step that follows with :func:`result`::

    @step()
    def transcribe(self):
        return modal_steps.run("whisper", {"audio_url": get_context().url}, then="summarise")

    @step()
    def summarise(self):
        text = modal_steps.result("transcribe").output["text"]
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from automate_core.errors import ConflictError, NotFoundError
from automate_core.workflows.flow import Fail, Goto, WaitSignal
from automate_core.workflows.steps import (
    Node,
    Problem,
    StepCall,
    StepResult,
    StepType,
    attribution,
    current_step_call,
    register_step_type,
    render_value,
    step_tenant,
)
from automate_modal import services
from automate_modal.models import ModalJob

__all__ = ["JobResult", "result", "run"]

STEP_TYPE = "modal.run"


@dataclass(frozen=True)
class JobResult:
    """An ended (or still running) job, as the step that waited on it sees it."""

    job_id: str
    status: str
    output: Any
    error: str
    gpu: str
    gpu_seconds: float
    cost: str

    @classmethod
    def of(cls, job: ModalJob) -> JobResult:
        return cls(
            job_id=str(job.pk),
            status=job.status,
            output=job.output,
            error=job.error,
            gpu=job.gpu,
            gpu_seconds=round(job.gpu_seconds, 3),
            cost=str(job.cost),
        )

    def to_json(self) -> dict[str, Any]:
        data = {
            "output": self.output,
            "gpu_seconds": self.gpu_seconds,
            "cost": self.cost,
            "job_id": self.job_id,
            "gpu": self.gpu,
            "status": self.status,
        }
        if self.error:
            data["error"] = self.error
        return data


def _spawn(call: StepCall, endpoint: str, input: Any) -> ModalJob:
    who = attribution(call)
    return services.spawn_job(
        services.get_endpoint(step_tenant(call), endpoint),
        input,
        idempotency_key=f"modal-step:{who.idempotency_key}",
        execution_id=who.execution_id,
        step_id=who.step_id,
        workflow=who.workflow,
        trace_id=who.trace_id,
        defer=True,  # spawned once the visit commits: the intent is recorded first
    )


def run(
    endpoint: str, input: Any, *, then: str | None = None, on_timeout: str | None = None
) -> WaitSignal:
    """Spawn a job of ``endpoint`` from the running code-first step and return the wait for it
    (return it from the step). The run goes on at ``then`` (else the next step) when the job
    ends, whatever its status: read it there with :func:`result`."""
    call = current_step_call()
    job = _spawn(call, endpoint, input)
    return WaitSignal(services.signal_name(job.pk), then=then, on_timeout=on_timeout)


def result(step_id: str) -> JobResult:
    """The latest job step ``step_id`` of the running workflow spawned."""
    call = current_step_call()
    job = (
        ModalJob.objects.filter(execution_id=call.execution_id, step_id=step_id)
        .order_by("-created_at")
        .first()
    )
    if job is None:
        raise NotFoundError(f"Step {step_id!r} of this run spawned no Modal job")
    return JobResult.of(job)


def _run_step(node: Node, call: StepCall) -> StepResult:
    previous = (call.steps.get(call.step_id) or {}).get("output")
    if isinstance(previous, Mapping) and previous.get("waiting"):
        job = ModalJob.objects.filter(pk=previous["job_id"]).first()
        if job is None:
            raise ConflictError("The Modal job this step waited on is gone")
        return _after(job, node, call)
    scope = call.scope()
    job = _spawn(
        call,
        str(render_value(node["endpoint"], scope, "endpoint")),
        render_value(node.get("input") or {}, scope, "input"),
    )
    return _after(job, node, call)


def _after(job: ModalJob, node: Node, call: StepCall) -> StepResult:
    """Wait (visiting this step again when the job ends), or the ended job's outcome."""
    if not job.is_finished:
        return StepResult(
            output={"waiting": True, "job_id": str(job.pk), "status": job.status},
            transition=WaitSignal(services.signal_name(job.pk), then=call.step_id),
        )
    ended = JobResult.of(job)
    if job.status == ModalJob.Status.SUCCEEDED:
        return StepResult(output=ended.to_json())
    if job.status == ModalJob.Status.TIMED_OUT and node.get("on_timeout"):
        return StepResult(output=ended.to_json(), transition=Goto(node["on_timeout"]))
    return StepResult(
        output=ended.to_json(),
        transition=Fail(f"Modal job {job.pk} {job.status}: {job.error}".strip()),
    )


def _validate(node: Node, path: str) -> list[Problem]:
    problems: list[Problem] = []
    if not node.get("endpoint"):
        problems.append((f"{path}.endpoint", "is required"))
    if "input" in node and not isinstance(node["input"], Mapping | list | str):
        problems.append((f"{path}.input", "must be an object, a list or a template"))
    return problems


register_step_type(STEP_TYPE, StepType(_run_step, _validate, targets=("on_timeout",)))
