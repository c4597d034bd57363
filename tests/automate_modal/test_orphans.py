"""The intent is recorded before the spawn, and a call whose record was lost is recovered.

A worker killed between a spawn and the commit of its call id is played by the SDK double's
``crash_after_spawn``: the call starts on the fake Modal, then the worker "dies" and the
transaction that would have recorded it rolls back.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from django.db.models import F
from django.utils import timezone

from automate_core.governance.models import Budget, BudgetReservation
from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.store import LeaseLost
from automate_core.testing.runtime import run_until_idle
from automate_modal import services
from automate_modal.models import ModalJob
from automate_modal.tasks import spawn_job as spawn_job_handler
from automate_modal.testing import WorkerKilled

from .jobs import fresh, poll_now, report

pytestmark = pytest.mark.django_db

Status = ModalJob.Status


def crashed_spawn(cloud, endpoint) -> ModalJob:
    """A job whose first call started on Modal but whose worker died before recording it."""
    cloud.crash_after_spawn()
    with pytest.raises(WorkerKilled):
        services.spawn_job(endpoint, {"n": 1}, idempotency_key="crash")
    return ModalJob.objects.get(idempotency_key="crash")


def age_intent(job: ModalJob, seconds: float) -> None:
    """Move the current attempt's intent ``seconds`` into the past."""
    attempts = job.attempts
    attempts[-1]["intent_at"] = (timezone.now() - dt.timedelta(seconds=seconds)).isoformat()
    ModalJob.objects.filter(pk=job.pk).update(attempts=attempts)


def test_a_deferred_spawn_records_the_job_and_spawns_only_from_the_outbox(cloud, endpoint):
    job = services.spawn_job(endpoint, {}, defer=True)
    assert job.status == Status.PENDING
    assert cloud.spawned == []
    assert OutboxJob.objects.filter(kind=services.SPAWN_JOB).exists()
    run_until_idle()
    job = fresh(job)
    assert job.status == Status.RUNNING
    assert job.function_call_id == cloud.spawned[0].object_id


def test_the_intent_survives_a_worker_killed_after_the_spawn(cloud, endpoint):
    job = crashed_spawn(cloud, endpoint)
    assert len(cloud.spawned) == 1
    assert job.status == Status.PENDING
    assert job.attempts[0]["intent_at"] is not None
    assert job.attempts[0]["function_call_id"] == ""
    assert job.attempts[0]["hold"]


def test_a_young_intent_is_not_spawned_again(cloud, endpoint):
    job = crashed_spawn(cloud, endpoint)
    poll_now()
    assert len(cloud.spawned) == 1
    assert fresh(job).attempts[0]["outcome"] is None


def test_an_orphan_is_marked_lost_and_spawned_once_more(cloud, endpoint, settings):
    job = crashed_spawn(cloud, endpoint)
    age_intent(job, settings.AUTOMATE_MODAL.get("ORPHAN_AFTER_SECONDS", 60) + 1)
    poll_now()
    job = fresh(job)
    assert len(cloud.spawned) == 2
    assert [(a["n"], a["outcome"]) for a in job.attempts] == [(1, "lost"), (2, None)]
    assert job.function_call_id == cloud.spawned[1].object_id
    assert job.status == Status.RUNNING


def test_the_lost_attempts_hold_is_released(cloud, endpoint, tenant):
    Budget.objects.create(
        tenant=tenant, scope_type="tenant", scope_id=str(tenant.pk), period="total", limit_cost=5
    )
    job = crashed_spawn(cloud, endpoint)
    lost_ref = job.attempts[0]["hold"]["ref"]
    age_intent(job, 3600)
    poll_now()
    assert BudgetReservation.objects.get(ref=lost_ref).status == "released"


def test_an_orphans_report_before_the_check_is_the_jobs_result(cloud, endpoint):
    job = crashed_spawn(cloud, endpoint)
    assert report(cloud.spawned[0], {"output": {"text": "orphan"}}).status_code == 200
    age_intent(fresh(job), 3600)
    poll_now()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert job.output == {"text": "orphan"}
    assert len(cloud.spawned) == 1


def orphaned_and_respawned(cloud, endpoint) -> ModalJob:
    job = crashed_spawn(cloud, endpoint)
    age_intent(job, 3600)
    poll_now()
    return fresh(job)


def test_a_lost_orphans_late_output_is_the_result_and_the_respawn_is_cancelled(cloud, endpoint):
    job = orphaned_and_respawned(cloud, endpoint)
    assert report(cloud.spawned[0], {"output": "late"}).status_code == 200
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert job.output == "late"
    assert [a["outcome"] for a in job.attempts] == ["succeeded", "cancelled"]
    assert cloud.spawned[1].cancelled


def test_an_adopted_orphans_seconds_are_charged_to_the_budgets(cloud, endpoint, tenant):
    budget = Budget.objects.create(
        tenant=tenant, scope_type="tenant", scope_id=str(tenant.pk), period="total", limit_cost=5
    )
    job = orphaned_and_respawned(cloud, endpoint)
    report(cloud.spawned[0], {"output": "late"})
    job = fresh(job)
    budget.refresh_from_db()
    assert Decimal(job.attempts[0]["cost"]) > 0
    assert budget.spent_cost == job.cost == sum(Decimal(a["cost"]) for a in job.attempts)
    assert budget.reserved_cost == 0


def test_a_lost_orphans_late_failure_is_refused(cloud, endpoint):
    job = orphaned_and_respawned(cloud, endpoint)
    assert report(cloud.spawned[0], {"error": "boom", "kind": "permanent"}).status_code == 403
    assert report(cloud.spawned[1], {"output": "respawned"}).status_code == 200
    job = fresh(job)
    assert job.output == "respawned"
    assert [a["outcome"] for a in job.attempts] == ["lost", "succeeded"]


def test_a_lost_orphans_report_after_the_job_ended_is_refused(cloud, endpoint):
    job = orphaned_and_respawned(cloud, endpoint)
    assert report(cloud.spawned[1], {"output": "respawned"}).status_code == 200
    assert report(cloud.spawned[0], {"output": "late"}).status_code == 403
    assert fresh(job).output == "respawned"


def test_a_lost_attempt_does_not_use_up_a_retry(cloud, endpoint):
    endpoint.max_retries = 1
    endpoint.save()
    cloud.script("asr", "transcribe", {"lost": True}, MemoryError("CUDA out of memory"), "ok")
    job = crashed_spawn(cloud, endpoint)
    age_intent(job, 3600)
    poll_now()
    job = fresh(job)
    assert [(a["gpu"], a["outcome"]) for a in job.attempts] == [
        ("L4", "lost"),
        ("L4", "oom"),
        ("A100-40GB", "succeeded"),
    ]
    assert job.output == "ok"


def test_a_worker_killed_after_a_deferred_spawn_costs_one_extra_spawn(cloud, endpoint):
    job = services.spawn_job(endpoint, {}, defer=True)
    cloud.crash_after_spawn()
    with pytest.raises(WorkerKilled):
        run_until_idle()
    age_intent(fresh(job), 3600)
    poll_now()
    job = fresh(job)
    assert len(cloud.spawned) == 2
    cloud.finish(job.function_call_id, {"ok": True})
    poll_now()
    job = fresh(job)
    assert job.status == Status.SUCCEEDED
    assert [a["outcome"] for a in job.attempts] == ["lost", "succeeded"]


def test_a_spawn_job_whose_lease_was_taken_over_spawns_nothing(cloud, endpoint):
    services.spawn_job(endpoint, {}, defer=True)
    (lease,) = store.claim_batch("slow-worker", 10)
    OutboxJob.objects.filter(pk=lease.job_id).update(fencing_token=F("fencing_token") + 1)
    with pytest.raises(LeaseLost):
        spawn_job_handler(lease)
    assert cloud.spawned == []
