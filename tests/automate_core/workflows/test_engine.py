"""The engine end to end through the outbox: every control flow, timer, retry and pinning."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import fire_timers, run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.models import Automation
from tests.testapp import workflows as test_workflows

pytestmark = pytest.mark.django_db

Status = Execution.Status


@pytest.fixture(autouse=True)
def clear_calls():
    test_workflows.CALLS.clear()


def refreshed(run):
    run.refresh_from_db()
    return run


def test_linear_workflow_runs_every_step_in_order_and_completes():
    run = engine.start("three-steps")
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED
    assert run.result == {"n": 11}
    steps = list(run.steps.values_list("step_id", "status", "attempt"))
    assert steps == [("one", "completed", 1), ("two", "completed", 1), ("three", "completed", 1)]


def test_step_runs_record_idempotency_keys_durations_and_trace():
    run = engine.start("three-steps", trace_id="trace-engine-1")
    run_until_idle()
    first = run.steps.get(step_id="one")
    assert first.idempotency_key == f"{run.pk}:one"
    assert first.duration_ms is not None and first.trace_id == "trace-engine-1"
    assert first.input == {"context": {"n": 0}}


def test_start_inside_a_rolled_back_transaction_leaves_nothing():
    with pytest.raises(RuntimeError), transaction.atomic():
        engine.start("three-steps")
        raise RuntimeError("caller changed its mind")
    assert Execution.objects.count() == 0
    assert OutboxJob.objects.count() == 0


def test_signal_resumes_a_waiting_run_and_merges_only_known_fields():
    run = engine.start("approval", user="ada")
    run_until_idle()
    assert refreshed(run).status == Status.WAITING
    resumed = engine.signal(
        "approved", {"approved": True, "note": "ok", "role": "admin"}, execution=run
    )
    assert [r.pk for r in resumed] == [run.pk]
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED
    assert run.result == {"user": "ada", "approved": True, "note": "ok"}
    assert "role" not in run.context


def test_wait_timeout_goes_to_on_timeout_step():
    run = engine.start("approval", user="ada")
    run_until_idle()
    assert fire_timers() == 1
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.FAILED
    assert run.error == "nobody approved in time"


def test_late_timeout_after_the_signal_does_nothing():
    run = engine.start("approval", user="ada")
    run_until_idle()
    engine.signal("approved", {"approved": True}, execution=run)
    fire_timers()
    run_until_idle()
    assert refreshed(run).status == Status.COMPLETED


def test_signal_without_execution_reaches_every_waiting_run_of_the_tenant(tenant, other_tenant):
    mine = engine.start("approval", tenant=tenant, user="a")
    theirs = engine.start("approval", tenant=other_tenant, user="b")
    run_until_idle()
    resumed = engine.signal("approved", {"approved": True}, tenant=tenant)
    assert [r.pk for r in resumed] == [mine.pk]
    run_until_idle()
    assert refreshed(theirs).status == Status.WAITING


def test_sleep_waits_in_the_database_until_its_time():
    run = engine.start("nap")
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.WAITING
    assert run.wake_at > timezone.now() + timedelta(minutes=29)
    assert run_until_idle() == 0  # nothing is due yet
    fire_timers()
    run_until_idle()
    assert refreshed(run).result == {"woke": True}


def test_failing_step_is_retried_with_backoff_then_succeeds():
    run = engine.start("flaky", fail_times=2)
    run_until_idle()
    step = run.steps.get()
    assert step.status == StepRun.Status.RETRYING and step.attempt == 1
    retry_job = OutboxJob.objects.filter(status="queued").get()
    assert retry_job.available_at > timezone.now() + timedelta(seconds=55)
    for _ in range(2):
        fire_timers()
        run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED
    step = run.steps.get()
    assert (step.status, step.attempt) == ("completed", 3)
    assert step.idempotency_key == f"{run.pk}:call_api"


def test_step_failing_every_attempt_fails_the_run_with_a_redacted_error():
    run = engine.start("flaky", fail_times=99)
    for _ in range(3):
        run_until_idle()
        fire_timers()
    run = refreshed(run)
    assert run.status == Status.FAILED
    assert "after 3 attempt(s)" in run.error and "ConnectionError" in run.error
    assert "sk-live" not in run.error and "sk-live" not in run.steps.get().error


def test_retry_resumes_from_the_failed_step_without_rerunning_completed_steps():
    run = engine.start("flaky", fail_times=3)
    for _ in range(3):
        run_until_idle()
        fire_timers()
    assert refreshed(run).status == Status.FAILED
    engine.retry(run)
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED
    assert test_workflows.CALLS.count("call_api") == 4


def test_goto_loops_and_each_visit_gets_its_own_key():
    run = engine.start("loop")
    run_until_idle()
    run = refreshed(run)
    assert run.result == {"i": 3}
    keys = list(run.steps.order_by("seq").values_list("idempotency_key", flat=True))
    assert keys == [f"{run.pk}:tick", f"{run.pk}:tick:2", f"{run.pk}:tick:3"]


def test_cancel_stops_a_waiting_run_and_its_timers_do_nothing():
    run = engine.start("approval", user="ada")
    run_until_idle()
    engine.cancel(run)
    fire_timers()
    run_until_idle()
    assert refreshed(run).status == Status.CANCELLED


def test_duplicate_step_job_does_not_run_a_completed_step_again():
    run = engine.start("three-steps")
    first_job = OutboxJob.objects.get()
    run_until_idle()
    OutboxJob.objects.create(
        kind=first_job.kind, payload=first_job.payload, available_at=timezone.now()
    )
    run_until_idle()
    assert refreshed(run).steps.count() == 3
    assert refreshed(run).result == {"n": 11}


def test_wait_for_event_resumes_only_on_a_matching_event(tenant):
    run = engine.start("payment-wait", tenant=tenant, order="A-1")
    run_until_idle()
    ingestor.ingest("payment.received", {"order": "B-2", "amount": 5}, tenant=tenant)
    run_until_idle()
    assert refreshed(run).status == Status.WAITING
    ingestor.ingest("payment.received", {"order": "A-1", "amount": 42}, tenant=tenant)
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED and run.result == {"amount": 42}


def test_event_workflow_with_past_offset_runs_at_once(tenant):
    occurs = timezone.now() + timedelta(minutes=30)  # reminder due 60 minutes before: already past
    ingestor.ingest("subscription.renews", {"plan": "pro"}, tenant=tenant, occurs_at=occurs)
    run_until_idle()
    assert test_workflows.CALLS == ["remind:pro"]


def test_event_workflow_with_future_offset_waits_until_then(tenant):
    occurs = timezone.now() + timedelta(days=3)
    ingested = ingestor.ingest("subscription.renews", {"plan": "team"}, tenant=tenant)
    run_until_idle()
    assert test_workflows.CALLS == ["remind:team"]  # occurs now: offset -60 min is in the past
    Execution.objects.all().delete()
    test_workflows.CALLS.clear()
    future = ingestor.ingest(
        "subscription.renews", {"plan": "biz"}, tenant=tenant, occurs_at=occurs
    )
    fire_timers(kinds=("event.due",))  # the early fire, 60 minutes before it occurs
    run_until_idle()
    run = Execution.objects.get(event=future.event)
    assert run.status == Status.WAITING
    assert run.wake_at == occurs - timedelta(minutes=60)
    assert test_workflows.CALLS == []
    assert ingested.created


GRAPH_V1 = {"start": "done", "steps": {"done": {"type": "complete", "result": {"v": 1}}}}
GRAPH_V2 = {"start": "done", "steps": {"done": {"type": "complete", "result": {"v": 2}}}}
WAITING_GRAPH = {
    "start": "hold",
    "steps": {
        "hold": {"type": "wait", "signal": "go", "next": "done"},
        "done": {"type": "complete", "result": {"v": 1}},
    },
}


def test_running_executions_stay_on_the_version_they_started_with(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Versions")
    v1 = automation.new_version(
        {**WAITING_GRAPH, "steps": {**WAITING_GRAPH["steps"], "done": GRAPH_V1["steps"]["done"]}}
    )
    v1.publish()
    run = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    v2 = automation.new_version(
        {**WAITING_GRAPH, "steps": {**WAITING_GRAPH["steps"], "done": GRAPH_V2["steps"]["done"]}}
    )
    v2.publish()
    engine.signal("go", execution=run)
    run_until_idle()
    assert refreshed(run).result == {"v": 1}
    fresh = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    engine.signal("go", execution=fresh)
    run_until_idle()
    assert refreshed(fresh).result == {"v": 2}
    assert refreshed(fresh).workflow_version == v2


def test_replay_runs_a_finished_execution_on_a_chosen_version(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Replay")
    v1 = automation.new_version(GRAPH_V1)
    v1.publish()
    run = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    v2 = automation.new_version(GRAPH_V2)
    v2.publish(make_live=False)
    replayed = engine.replay(refreshed(run), version=v2)
    run_until_idle()
    assert refreshed(replayed).result == {"v": 2}


def test_connector_step_resolves_secret_refs_at_run_time_only(tenant, monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_ECHO_LABEL", "s3cr3t-label-value")
    graph = {
        "start": "call",
        "steps": {
            "call": {
                "type": "connector",
                "connector": "echo",
                "action": "echo",
                "config": {"label": {"$secret": "ECHO_LABEL"}},
                "input": {"x": 1},
            }
        },
    }
    automation = Automation.objects.create(tenant=tenant, name="Secret user")
    version = automation.new_version(graph)
    version.publish()
    run = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    assert refreshed(run).status == Status.COMPLETED
    version.refresh_from_db()
    assert version.graph["steps"]["call"]["config"] == {"label": {"$secret": "ECHO_LABEL"}}
    stored = str(list(StepRun.objects.values())) + str(list(Execution.objects.values()))
    assert "s3cr3t-label-value" not in stored


def test_missing_secret_fails_the_step_naming_the_ref_not_a_value(tenant):
    graph = {
        "start": "call",
        "steps": {
            "call": {
                "type": "connector",
                "connector": "echo",
                "action": "echo",
                "config": {"label": "$secret:NOT_SET_ANYWHERE"},
            }
        },
    }
    automation = Automation.objects.create(tenant=tenant, name="Missing secret")
    automation.new_version(graph).publish()
    run = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.FAILED
    assert "NOT_SET_ANYWHERE" in run.error


def test_resolved_secret_values_are_never_stored_even_if_a_step_returns_them(monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_LEAKY_TOKEN", "tok-9f8e7d6c5b4a")
    run = engine.start("leaky")
    run_until_idle()
    run = refreshed(run)
    assert run.status == Status.COMPLETED
    assert run.result == {"token": "[REDACTED]", "note": "used [REDACTED] to call the API"}
    stored = str(list(StepRun.objects.values())) + str(list(Execution.objects.values()))
    assert "tok-9f8e7d6c5b4a" not in stored


def test_steps_that_follow_at_once_run_in_one_job_and_long_chains_hand_over(monkeypatch):
    run = engine.start("three-steps")
    run_until_idle()
    assert OutboxJob.objects.filter(kind=engine.STEP_JOB).count() == 1
    assert refreshed(run).result == {"n": 11}

    monkeypatch.setattr(engine, "INLINE_STEPS", 2)
    again = engine.start("three-steps")
    run_until_idle()
    assert refreshed(again).result == {"n": 11}
    jobs = OutboxJob.objects.filter(kind=engine.STEP_JOB, payload__execution=str(again.pk))
    assert jobs.count() == 2 and set(jobs.values_list("status", flat=True)) == {"done"}


def test_a_stale_worker_commits_no_step_after_its_lease_is_taken_over():
    from automate_core.outbox import store
    from automate_core.outbox.store import LeaseLost

    run = engine.start("three-steps")
    [lease] = store.claim_batch("slow-worker", 10)
    OutboxJob.objects.filter(pk=lease.job_id).update(fencing_token=lease.token + 1)  # taken over
    with pytest.raises(LeaseLost):
        engine.run_step_job(lease)
    assert not StepRun.objects.filter(execution=run).exists()
    assert refreshed(run).status == Status.QUEUED


def test_a_draft_version_cannot_be_run(tenant):
    from automate_core.errors import ConflictError

    automation = Automation.objects.create(tenant=tenant, name="Drafty")
    draft = automation.new_version(GRAPH_V1)
    with pytest.raises(ConflictError, match="draft"):
        engine.start(automation.slug, tenant=tenant, version=draft)
