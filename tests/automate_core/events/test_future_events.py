"""An ingested event whose ``occurs_at`` is in the future is ``scheduled`` until that time, and
what it starts, starts then, once."""

from datetime import timedelta

import pytest
from django.utils import timezone

from automate_core.events.models import Event
from automate_core.executions.models import Execution
from automate_core.rules.models import Trigger
from automate_core.testing.runtime import fire_timers, run_until_idle
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

GRAPH = {"start": "done", "steps": {"done": {"type": "complete", "result": {"ok": True}}}}


@pytest.fixture
def automation(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Renewals")
    automation.new_version(GRAPH).publish()
    Trigger.objects.create(
        tenant=tenant, name="renewal", event_type="plan.renews", automation=automation
    )
    return automation


def post_future_event(api_client, days: int = 2) -> str:
    occurs = (timezone.now() + timedelta(days=days)).isoformat()
    response = api_client.post(
        "/api/v1/events",
        {"type": "plan.renews", "payload": {"plan": "pro"}, "occurs_at": occurs},
        format="json",
    )
    assert response.status_code == 202, response.content
    return response.json()["event_id"]


def test_an_event_posted_for_a_future_time_is_listed_as_scheduled(api_client):
    event_id = post_future_event(api_client)
    run_until_idle()
    [listed] = api_client.get("/api/v1/events").json()["results"]
    assert (listed["id"], listed["status"]) == (event_id, "scheduled")


def test_a_future_event_starts_nothing_before_its_time(api_client, automation):
    post_future_event(api_client)
    run_until_idle()
    assert not Execution.objects.exists()


def test_a_future_event_occurs_at_its_time_and_starts_its_trigger_once(api_client, automation):
    event_id = post_future_event(api_client)
    run_until_idle()
    fire_timers()
    run_until_idle()
    fire_timers()
    run_until_idle()
    assert Event.objects.get(pk=event_id).status == Event.Status.OCCURRED
    [run] = Execution.objects.filter(event_id=event_id)
    assert run.workflow_name == automation.slug and run.status == Execution.Status.COMPLETED
