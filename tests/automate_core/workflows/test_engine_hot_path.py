"""The engine's per-visit statements, handoffs to the running worker, and compare-and-set."""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Iterator

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import Worker, run_job
from automate_core.tenancy.models import Tenant
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.code import step, workflow
from tests.testapp import workflows as test_workflows

Status = Execution.Status

STEP_STARTED = threading.Event()
STEP_MAY_FINISH = threading.Event()


@workflow("test-blocking-step")
class BlockingStep:
    """Its first step waits until the test lets it finish, so the test can act meanwhile."""

    @step(start=True)
    def hold(self):
        STEP_STARTED.set()
        assert STEP_MAY_FINISH.wait(10)

    @step()
    def after(self):
        test_workflows.CALLS.append("after")


@workflow("test-writing-step")
class WritingStep:
    """Its step writes a row of its own, which must commit with the step's checkpoint or not."""

    @step(start=True)
    def write(self):
        Tenant.objects.create(name="written by the step", slug=f"step-{uuid.uuid4().hex[:8]}")


@pytest.fixture(autouse=True)
def fresh_state() -> Iterator[None]:
    test_workflows.CALLS.clear()
    STEP_STARTED.clear()
    STEP_MAY_FINISH.clear()
    yield
    STEP_MAY_FINISH.set()


def statements_during(action) -> list[str]:
    with CaptureQueriesContext(connection) as captured:
        action()
    return [query["sql"] for query in captured.captured_queries]


@pytest.mark.django_db
def test_a_job_reads_its_run_once_and_writes_each_visit_in_one_statement():
    run = engine.start("three-steps")

    sql = statements_during(run_until_idle)

    touching_runs = [s for s in sql if "automate_core_execution" in s]
    checkpoints = [s for s in touching_runs if "automate_core_steprun" in s and "UPDATE" in s]
    assert len(checkpoints) == 3  # one per step, each also moving the job
    assert len(touching_runs) == 4  # and the one read of the run with its history
    assert all("automate_core_outboxjob" in s for s in checkpoints)
    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"n": 11})


@pytest.mark.django_db
def test_the_same_event_starts_a_workflow_once_however_often_it_is_handled(tenant):
    event = ingestor.ingest("subscription.renews", {"plan": "pro"}, tenant=tenant).event

    first = engine.handle_event_occurred(event)
    again = engine.handle_event_occurred(event)

    assert [r.pk for r in again] == [r.pk for r in first]
    assert Execution.objects.filter(event=event).count() == 1
    step_jobs = OutboxJob.objects.filter(kind=engine.STEP_JOB, payload__execution=str(first[0].pk))
    assert step_jobs.count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_cancel_during_a_step_wins_and_the_visit_is_not_checkpointed():
    run = engine.start("test-blocking-step")
    [lease] = store.claim_batch("worker", 1)

    def work() -> None:
        try:
            run_job(lease)
        finally:
            connection.close()

    worker = threading.Thread(target=work)
    worker.start()
    try:
        assert STEP_STARTED.wait(10)
        engine.cancel(run)  # no lock is held across the step: the cancel does not wait
    finally:
        STEP_MAY_FINISH.set()
        worker.join(10)

    run.refresh_from_db()
    assert run.status == Status.CANCELLED
    assert not StepRun.objects.filter(execution=run).exists()
    assert test_workflows.CALLS == []
    assert OutboxJob.objects.get(pk=lease.job_id).status == OutboxJob.Status.DONE


@pytest.mark.django_db(transaction=True)
def test_a_worker_runs_the_first_step_of_a_run_it_started_without_claiming_it(tenant):
    event = ingestor.ingest("subscription.renews", {"plan": "pro"}, tenant=tenant).event

    outcomes = Worker(concurrency=1, once=True).run()

    assert outcomes == {"done": 2}
    run = Execution.objects.get(event=event)
    assert run.status == Status.COMPLETED
    event_job = OutboxJob.objects.get(kind="event.occurred")
    step_job = OutboxJob.objects.get(kind=engine.STEP_JOB)
    assert step_job.lease_owner == event_job.lease_owner
    assert (step_job.status, step_job.attempts, step_job.fencing_token) == ("done", 1, 1)


@pytest.mark.django_db(transaction=True)
def test_a_handed_off_job_of_a_rolled_back_transaction_does_not_exist_and_is_not_run():
    with (
        store.receiving_handoffs("worker", 60) as handed,
        pytest.raises(RuntimeError),
        transaction.atomic(),
    ):
        engine.start("three-steps")
        raise RuntimeError("the caller changed its mind")

    assert handed == []
    assert not Execution.objects.exists() and not OutboxJob.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_handed_off_job_whose_worker_died_is_reaped_and_run_by_another():
    with store.receiving_handoffs("worker-that-dies", 0.05) as handed, transaction.atomic():
        run = engine.start("three-steps")
    assert len(handed) == 1 and handed[0].owner == "worker-that-dies"
    assert OutboxJob.objects.get(pk=handed[0].job_id).status == OutboxJob.Status.RUNNING

    time.sleep(0.2)  # the lease expires; nobody ran the job
    assert store.reap_expired() == 1
    run_until_idle()

    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"n": 11})
    assert StepRun.objects.filter(execution=run).count() == 3


@pytest.mark.django_db
def test_a_start_outside_a_worker_queues_its_job_for_any_worker():
    run = engine.start("three-steps")

    job = OutboxJob.objects.get(kind=engine.STEP_JOB, payload__execution=str(run.pk))
    assert (job.status, job.attempts, job.lease_owner) == (OutboxJob.Status.QUEUED, 0, "")


@pytest.mark.django_db
def test_hot_path_statements_are_prepared_once_per_connection():
    engine.start("three-steps")
    run_until_idle()
    engine.start("three-steps")
    run_until_idle()

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*), sum(generic_plans + custom_plans) FROM pg_prepared_statements "
            "WHERE statement LIKE '%%automate_core_steprun%%'"
        )
        statements, executions = cursor.fetchone()
    assert statements >= 2 and executions >= 2 * statements


@pytest.mark.django_db
def test_the_engine_runs_without_prepared_statements(settings):
    settings.AUTOMATE = {**getattr(settings, "AUTOMATE", {}), "PREPARED_STATEMENTS": False}
    run = engine.start("three-steps")

    run_until_idle()

    run.refresh_from_db()
    assert (run.status, run.result) == (Status.COMPLETED, {"n": 11})


@pytest.mark.django_db(transaction=True)
def test_a_steps_own_writes_commit_with_its_checkpoint():
    run = engine.start("test-writing-step")

    run_until_idle()

    run.refresh_from_db()
    assert run.status == Status.COMPLETED
    assert Tenant.objects.filter(name="written by the step").count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_steps_own_writes_roll_back_when_its_checkpoint_loses_the_lease():
    from automate_core.outbox.store import LeaseLost

    run = engine.start("test-writing-step")
    [lease] = store.claim_batch("slow-worker", 1)
    OutboxJob.objects.filter(pk=lease.job_id).update(fencing_token=lease.token + 1)

    with pytest.raises(LeaseLost):
        engine.run_step_job(lease)

    assert not Tenant.objects.filter(name="written by the step").exists()
    assert not StepRun.objects.filter(execution=run).exists()
    run.refresh_from_db()
    assert run.status == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_a_step_that_writes_nothing_commits_its_checkpoint_alone():
    run = engine.start("three-steps")
    [lease] = store.claim_batch("worker", 1)
    OutboxJob.objects.filter(pk=lease.job_id).update(fencing_token=lease.token + 1)

    with pytest.raises(store.LeaseLost):
        engine.run_step_job(lease)  # the lone checkpoint statement fails whole: nothing written

    assert not StepRun.objects.filter(execution=run).exists()
    run.refresh_from_db()
    assert (run.status, run.seq) == (Status.QUEUED, 1)
