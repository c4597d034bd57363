"""The ``modal.run`` step: the run waits with no worker held and resumes when the job ends."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from automate_core.executions.models import Execution
from automate_core.governance.models import Budget
from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.code import step, workflow
from automate_core.workflows.flow import complete
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_modal import steps as modal_steps
from automate_modal.models import ModalJob

from .jobs import poll_now, report

pytestmark = pytest.mark.django_db

Status = Execution.Status

GRAPH = {
    "start": "transcribe",
    "steps": {
        "transcribe": {
            "type": "modal.run",
            "endpoint": "whisper",
            "input": {"audio": "{{ context.url }}"},
            "on_timeout": "too_slow",
            "next": "done",
        },
        "too_slow": {"type": "complete", "result": {"timed_out": True}},
        "done": {
            "type": "complete",
            "result": {
                "text": "{{ steps.transcribe.output.output.text }}",
                "gpu": "{{ steps.transcribe.output.gpu }}",
                "cost": "{{ steps.transcribe.output.cost }}",
            },
        },
    },
}


def start(tenant, graph=GRAPH, **context) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="Transcribe")
    automation.new_version(graph).publish()
    run = engine.start(automation.slug, tenant=tenant, url="s3://a.wav", **context)
    run_until_idle()
    return Execution.objects.get(pk=run.pk)


def fresh(run: Execution) -> Execution:
    return Execution.objects.get(pk=run.pk)


def test_the_run_waits_on_the_job_with_no_step_job_queued(cloud, endpoint, tenant):
    run = start(tenant)
    job = ModalJob.objects.get(execution_id=run.pk)
    assert run.status == Status.WAITING
    assert run.waiting_for["name"] == f"modal:{job.pk}"
    assert job.step_id == "transcribe"
    assert job.input == {"audio": "s3://a.wav"}
    pending = OutboxJob.objects.filter(status__in=OutboxJob.CLAIMABLE)
    assert set(pending.values_list("kind", flat=True)) == {"modal.reconcile", "modal.spawn"}


def test_spawn_then_callback_resumes_the_run_with_the_jobs_output(cloud, endpoint, tenant):
    run = start(tenant)
    report(cloud.spawned[0], {"output": {"text": "hello"}})
    run_until_idle()
    run = fresh(run)
    job = ModalJob.objects.get(execution_id=run.pk)
    assert run.status == Status.COMPLETED, run.error
    assert run.result == {"text": "hello", "gpu": "L4", "cost": str(job.cost)}
    assert Decimal(run.usage["cost"]) == job.cost
    assert run.usage["calls"] == 1


def test_the_jobs_gpu_seconds_are_rolled_into_the_runs_usage(cloud, endpoint, tenant):
    run = start(tenant)
    time.sleep(0.01)
    report(cloud.spawned[0], {"output": {"text": "hello"}})
    run = fresh(run)
    job = ModalJob.objects.get(execution_id=run.pk)
    assert run.usage["gpu_seconds"] == round(job.gpu_seconds, 3) > 0


def test_spawn_with_no_callback_resumes_when_the_reconcile_poll_finds_the_result(
    cloud, endpoint, tenant
):
    run = start(tenant)
    cloud.finish(cloud.spawned[0].object_id, {"text": "polled"})
    poll_now()
    assert fresh(run).result["text"] == "polled"


def test_oom_escalation_is_invisible_to_the_run_but_for_the_gpu(cloud, endpoint, tenant):
    cloud.script("asr", "transcribe", MemoryError("CUDA out of memory"), {"text": "big"})
    run = start(tenant)
    poll_now()
    run = fresh(run)
    assert run.status == Status.COMPLETED, run.error
    assert run.result["gpu"] == "A100-40GB"


def test_a_timed_out_job_takes_the_on_timeout_path(cloud, endpoint, tenant, settings):
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "TIMEOUT_GRACE_SECONDS": 0}
    endpoint.timeout = 0
    endpoint.save()
    run = start(tenant)
    poll_now()
    run = fresh(run)
    assert run.status == Status.COMPLETED, run.error
    assert run.result == {"timed_out": True}
    assert cloud.spawned[0].cancelled


def test_a_failed_job_fails_the_run_with_its_error(cloud, endpoint, tenant):
    cloud.script("asr", "transcribe", ValueError("not audio"))
    run = start(tenant)
    poll_now()
    run = fresh(run)
    assert run.status == Status.FAILED
    assert "not audio" in run.error


def test_cancelling_the_run_cancels_the_call_without_waiting_for_the_next_poll(
    cloud, endpoint, tenant
):
    run = start(tenant)
    engine.cancel(run)
    run_until_idle()
    assert cloud.spawned[0].cancelled
    assert ModalJob.objects.get(execution_id=run.pk).status == ModalJob.Status.CANCELLED


def test_a_workflow_budget_that_cannot_hold_the_worst_case_fails_the_run_unspawned(
    cloud, endpoint, tenant
):
    Budget.objects.create(
        tenant=tenant,
        scope_type="workflow",
        scope_id="transcribe",
        period="total",
        limit_cost=Decimal("0.01"),
    )
    run = start(tenant)
    assert run.status == Status.FAILED
    assert "budget" in run.error.lower()
    assert cloud.spawned == []


def test_the_step_never_reaches_another_tenants_endpoint(cloud, endpoint, other_tenant):
    run = start(other_tenant)
    assert run.status == Status.FAILED
    assert cloud.spawned == []


def test_graph_validation_names_a_missing_endpoint():
    graph = {"start": "a", "steps": {"a": {"type": "modal.run", "input": {}}}}
    assert ("steps.a.endpoint", "is required") in validate(graph)


def test_code_first_steps_spawn_and_read_the_job_in_the_next_step(cloud, endpoint, tenant):
    @workflow("modal-code-test")
    class Transcribe:
        @step(start=True)
        def transcribe(self):
            return modal_steps.run("whisper", {"audio": "b.wav"})

        @step()
        def summarise(self):
            job = modal_steps.result("transcribe")
            return complete(text=job.output["text"], status=job.status)

    run = engine.start("modal-code-test", tenant=tenant)
    run_until_idle()
    assert fresh(run).status == Status.WAITING
    report(cloud.spawned[0], {"output": {"text": "code"}})
    run_until_idle()
    run = fresh(run)
    assert run.status == Status.COMPLETED, run.error
    assert run.result == {"text": "code", "status": "succeeded"}


def test_the_local_backend_runs_a_workflow_step_end_to_end(local_endpoint, tenant, settings):
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "CALLBACK_BASE_URL": ""}
    graph = {
        "start": "count",
        "steps": {
            "count": {
                "type": "modal.run",
                "endpoint": local_endpoint.slug,
                "input": {"texts": ["{{ context.url }}", "two words"]},
                "next": "done",
            },
            "done": {"type": "complete", "result": {"echo": "{{ steps.count.output.output }}"}},
        },
    }
    local_endpoint.function_name = "automate_modal.demo.word_count"
    local_endpoint.save()
    run = start(tenant, graph)
    deadline = time.monotonic() + 30
    while fresh(run).status == Status.WAITING and time.monotonic() < deadline:
        time.sleep(0.1)
        poll_now(rounds=1)
    run = fresh(run)
    assert run.status == Status.COMPLETED, run.error
    assert run.result == {"echo": {"counts": [1, 2]}}
