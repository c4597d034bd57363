"""Spawning, completing, retrying, escalating, timing out and cancelling jobs."""

from __future__ import annotations

import json
from decimal import Decimal

import modal.exception
import pytest

from automate_core.errors import ConflictError
from automate_core.governance.budgets import BudgetExceeded
from automate_core.governance.models import AuditLog, Budget
from automate_modal import services
from automate_modal.backends.base import SpawnFailed
from automate_modal.models import ModalJob
from automate_modal.pricing import price_for

from .jobs import fresh, poll_now, report

pytestmark = pytest.mark.django_db

Status = ModalJob.Status


def tenant_budget(tenant, **limits) -> Budget:
    return Budget.objects.create(
        tenant=tenant, scope_type="tenant", scope_id=str(tenant.pk), period="total", **limits
    )


def test_spawn_starts_the_call_and_records_it(cloud, endpoint):
    job = services.spawn_job(endpoint, {"audio": "a.wav"})
    (call,) = cloud.spawned
    assert job.status == Status.RUNNING
    assert job.function_call_id == call.object_id
    assert job.gpu == "L4"
    assert [(a["gpu"], a["function_call_id"], a["outcome"]) for a in job.attempts] == [
        ("L4", call.object_id, None)
    ]
    assert call.automate["job_id"] == str(job.pk)


def test_spawning_again_with_the_same_key_returns_the_same_job(cloud, endpoint):
    first = services.spawn_job(endpoint, {}, idempotency_key="order-7")
    again = services.spawn_job(endpoint, {}, idempotency_key="order-7")
    assert again.pk == first.pk
    assert len(cloud.spawned) == 1


def test_the_callback_completes_the_job_with_its_output(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    response = report(cloud.spawned[0], {"output": {"text": "hello"}})
    assert response.status_code == 200, response.json()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert job.output == {"text": "hello"}
    assert job.attempts[0]["outcome"] == "succeeded"
    assert AuditLog.objects.filter(action="modal.job", target=f"modal_job:{job.pk}").exists()


def test_with_no_callback_the_reconcile_poll_finds_the_result(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    poll_now()
    assert fresh(job).status == Status.RUNNING  # still running: polled again later
    cloud.finish(job.function_call_id, {"text": "late"})
    poll_now()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert job.output == {"text": "late"}


def test_oom_on_l4_is_retried_on_the_next_gpu_and_both_attempts_are_recorded(cloud, endpoint):
    cloud.script("asr", "transcribe", MemoryError("CUDA out of memory"), {"text": "ok"})
    job = services.spawn_job(endpoint, {})
    poll_now()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert [c.gpu for c in cloud.spawned] == ["L4", "A100-40GB"]
    assert [(a["gpu"], a["outcome"]) for a in job.attempts] == [
        ("L4", "oom"),
        ("A100-40GB", "succeeded"),
    ]
    assert job.gpu == "A100-40GB"
    assert job.output == {"text": "ok"}


def test_oom_on_the_last_gpu_fails_the_job(cloud, endpoint):
    endpoint.gpu_fallbacks = []
    endpoint.save()
    cloud.script("asr", "transcribe", MemoryError("CUDA out of memory"))
    job = services.spawn_job(endpoint, {})
    poll_now()
    job = fresh(job)
    assert job.status == Status.FAILED
    assert job.error_kind == "oom"
    assert len(cloud.spawned) == 1


def test_a_transient_failure_is_retried_on_the_same_gpu_after_a_backoff(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    response = report(cloud.spawned[0], {"error": "registry hiccup", "kind": "transient"})
    assert response.status_code == 200
    assert len(cloud.spawned) == 1  # not at once: after the backoff
    cloud.script("asr", "transcribe", {"text": "second time"})
    poll_now()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert [(a["gpu"], a["outcome"]) for a in job.attempts] == [
        ("L4", "transient"),
        ("L4", "succeeded"),
    ]


def test_retries_stop_after_max_retries(cloud, endpoint):
    endpoint.max_retries = 1
    endpoint.save()
    cloud.script("asr", "transcribe", MemoryError("oom"), MemoryError("oom"), {"never": 1})
    job = services.spawn_job(endpoint, {})
    poll_now()
    job = fresh(job)
    assert job.status == Status.FAILED
    assert len(job.attempts) == 2


def test_a_permanent_failure_fails_the_job_with_the_functions_error(cloud, endpoint):
    cloud.script("asr", "transcribe", ValueError("bad audio"))
    job = services.spawn_job(endpoint, {})
    poll_now()
    job = fresh(job)
    assert job.status == Status.FAILED
    assert "bad audio" in job.error
    assert len(cloud.spawned) == 1


def test_a_call_running_past_its_timeout_is_cancelled_and_timed_out(cloud, endpoint, settings):
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "TIMEOUT_GRACE_SECONDS": 0}
    endpoint.timeout = 0
    endpoint.save()
    job = services.spawn_job(endpoint, {})
    poll_now()
    job = fresh(job)
    assert job.status == Status.TIMED_OUT
    assert cloud.spawned[0].cancelled


def test_cancel_stops_the_call_and_a_second_cancel_conflicts(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    services.cancel_job(job)
    assert fresh(job).status == Status.CANCELLED
    assert cloud.spawned[0].cancelled
    with pytest.raises(ConflictError):
        services.cancel_job(job)


def test_an_unreachable_modal_during_a_poll_keeps_the_job_running(cloud, endpoint):
    job = services.spawn_job(endpoint, {})
    cloud.unreachable = True
    poll_now()
    assert fresh(job).status == Status.RUNNING


# -- budgets -------------------------------------------------------------------------------------


def test_a_spawn_whose_worst_case_does_not_fit_the_budget_is_refused_and_not_spawned(
    cloud, endpoint, tenant
):
    worst = price_for("L4").cost(endpoint.timeout)
    tenant_budget(tenant, limit_cost=worst - Decimal("0.000001"))
    with pytest.raises(BudgetExceeded):
        services.spawn_job(endpoint, {})
    assert cloud.spawned == []
    assert not ModalJob.objects.exists()


def test_the_budget_is_charged_the_seconds_that_ran_not_the_worst_case(cloud, endpoint, tenant):
    budget = tenant_budget(tenant, limit_cost=Decimal("10"))
    job = services.spawn_job(endpoint, {})
    budget.refresh_from_db()
    assert budget.reserved_cost == price_for("L4").cost(endpoint.timeout)
    report(cloud.spawned[0], {"output": 1})
    budget.refresh_from_db()
    job = fresh(job)
    assert budget.reserved_cost == 0
    assert budget.spent_cost == job.cost
    assert job.cost == price_for("L4").cost(job.gpu_seconds)
    assert job.cost < price_for("L4").cost(endpoint.timeout)


def test_every_attempt_that_ran_is_charged(cloud, endpoint, tenant):
    budget = tenant_budget(tenant, limit_cost=Decimal("10"))
    cloud.script("asr", "transcribe", MemoryError("oom"), {"ok": True})
    job = services.spawn_job(endpoint, {})
    poll_now()
    budget.refresh_from_db()
    job = fresh(job)
    assert budget.reserved_cost == 0
    assert budget.spent_cost == job.cost == sum(Decimal(a["cost"]) for a in job.attempts)


def test_a_spawn_that_fails_releases_its_hold(cloud, endpoint, tenant):
    budget = tenant_budget(tenant, limit_cost=Decimal("10"))
    cloud.unreachable = True
    with pytest.raises(SpawnFailed):
        services.spawn_job(endpoint, {})
    budget.refresh_from_db()
    assert budget.reserved_cost == 0
    assert budget.spent_cost == 0


def test_the_sdk_reports_preemption_as_an_internal_failure(cloud, endpoint):
    cloud.script("asr", "transcribe", modal.exception.InternalFailure("preempted"), {"ok": 1})
    job = services.spawn_job(endpoint, {})
    poll_now()
    assert [a["outcome"] for a in fresh(job).attempts] == ["preempted", "succeeded"]


def test_a_large_output_is_stored_as_an_artifact(cloud, endpoint, settings, tmp_path):
    settings.MEDIA_ROOT = str(tmp_path / "media")
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "OUTPUT_INLINE_MAX_BYTES": 100}
    job = services.spawn_job(endpoint, {})
    big = {"vectors": [[0.5] * 64 for _ in range(4)]}
    report(cloud.spawned[0], {"output": big})
    job = fresh(job)
    (artifact,) = job.artifacts.all()
    assert job.output == {
        "artifact": {"id": str(artifact.pk), "name": "output.json", "size": artifact.size}
    }
    with artifact.file.open() as stored:
        assert json.load(stored) == big
