"""What a failing step leaves behind: a run that fails visibly when its checkpoint cannot be
written, the Context of a failed attempt for the next, and no retry of an egress refusal."""

import pytest
from django.urls import reverse

from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import fire_timers, run_until_idle
from automate_core.workflows import engine
from tests.testapp import workflows as test_workflows

pytestmark = pytest.mark.django_db


def test_a_step_whose_result_is_not_json_fails_the_run_with_the_error_on_its_step():
    run = engine.start("unserializable")
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Execution.Status.FAILED
    assert "could not be checkpointed" in run.error and "not JSON serializable" in run.error
    step = run.steps.get()
    assert (step.step_id, step.status) == ("finish", StepRun.Status.FAILED)
    assert "not JSON serializable" in step.error


def test_a_checkpoint_failure_completes_its_job_instead_of_retrying_it():
    engine.start("unserializable")
    run_until_idle()
    assert set(OutboxJob.objects.values_list("status", flat=True)) == {OutboxJob.Status.DONE}


def test_context_changes_of_a_failed_attempt_are_kept_for_the_retry():
    run = engine.start("counted-retry")
    run_until_idle()
    run.refresh_from_db()
    assert run.context == {"attempts": 1}
    fire_timers()
    run_until_idle()
    run.refresh_from_db()
    assert (run.status, run.result) == (Execution.Status.COMPLETED, {"attempts": 2})


def test_an_egress_refusal_fails_the_step_without_retrying_it():
    test_workflows.CALLS.clear()
    run = engine.start("egress-refused")
    run_until_idle()
    fire_timers()
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Execution.Status.FAILED
    step = run.steps.get()
    assert (step.status, step.attempt) == (StepRun.Status.FAILED, 1)
    assert test_workflows.CALLS == ["egress-refused"]


def test_a_checkpoint_failure_is_shown_by_the_executions_api(tenant, api_client):
    run = engine.start("unserializable", tenant=tenant)
    run_until_idle()
    body = api_client.get(f"/api/v1/executions/{run.pk}").json()
    assert body["status"] == "failed" and "could not be checkpointed" in body["error"]
    [step] = body["steps"]
    assert step["status"] == "failed" and "not JSON serializable" in step["error"]


def test_a_checkpoint_failure_is_shown_in_the_admin(tenant, admin_client):
    run = engine.start("unserializable", tenant=tenant)
    run_until_idle()
    page = admin_client.get(reverse("admin:automate_core_execution_change", args=[run.pk]))
    assert page.status_code == 200
    assert "could not be checkpointed" in page.content.decode()
