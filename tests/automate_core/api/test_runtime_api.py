"""Ingest events (API key, signed webhook), act on executions, dry-run rules."""

import json
import time

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from automate_core.events.models import Event, WebhookSource
from automate_core.events.webhooks import sign
from automate_core.executions.models import Execution
from automate_core.outbox.models import OutboxJob
from automate_core.rules.models import Trigger
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

SECRET = "whsec-test-0123456789"
GRAPH = {
    "start": "done",
    "steps": {"done": {"type": "complete", "result": {"amount": "{{ event.payload.amount }}"}}},
}


@pytest.fixture
def automation(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Big orders")
    automation.new_version(GRAPH).publish()
    Trigger.objects.create(
        tenant=tenant,
        name="big",
        event_type="order.paid",
        condition={">": [{"var": "payload.amount"}, 100]},
        automation=automation,
    )
    return automation


@pytest.fixture
def hook(tenant, monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_SHOP_HOOK", SECRET)
    return WebhookSource.objects.create(tenant=tenant, source="acme-shop", secret_ref="SHOP_HOOK")


def post_webhook(body, *, secret=SECRET, timestamp=None, **headers):
    raw = json.dumps(body).encode() if not isinstance(body, bytes) else body
    ts = str(int(timestamp if timestamp is not None else time.time()))
    return APIClient().post(
        "/api/v1/webhooks/acme-shop",
        data=raw,
        content_type="application/json",
        HTTP_X_AUTOMATE_TIMESTAMP=ts,
        HTTP_X_AUTOMATE_SIGNATURE=sign(secret, ts, raw),
        **headers,
    )


def test_posting_an_event_returns_202_and_starts_matching_automations(api_client, automation):
    response = api_client.post(
        "/api/v1/events", {"type": "order.paid", "payload": {"amount": 250}}, format="json"
    )
    assert response.status_code == 202
    assert response.json()["trace_id"] == response["X-Trace-Id"]
    run_until_idle()
    run = Execution.objects.get()
    assert (run.status, run.result) == ("completed", {"amount": 250})
    assert run.trace_id == response.json()["trace_id"]


def test_condition_that_does_not_hold_starts_nothing(api_client, automation):
    api_client.post(
        "/api/v1/events", {"type": "order.paid", "payload": {"amount": 5}}, format="json"
    )
    run_until_idle()
    assert not Execution.objects.exists()


def test_same_idempotency_key_twice_gives_the_same_event_and_one_run(api_client, automation):
    body = {"type": "order.paid", "payload": {"amount": 500}, "idempotency_key": "order-77"}
    first = api_client.post("/api/v1/events", body, format="json").json()
    run_until_idle()
    second = api_client.post("/api/v1/events", body, format="json").json()
    run_until_idle()
    assert first["event_id"] == second["event_id"]
    assert (first["created"], second["created"]) == (True, False)
    assert Execution.objects.count() == 1


def test_oversized_event_is_refused_and_nothing_stored(api_client):
    body = {"type": "big", "payload": {"blob": "x" * 300_000}}
    response = api_client.post("/api/v1/events", body, format="json")
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"
    assert not Event.objects.exists() and not OutboxJob.objects.exists()


def test_signed_webhook_is_accepted_and_runs(hook, automation):
    response = post_webhook({"amount": 300}, HTTP_X_AUTOMATE_EVENT="order.paid")
    assert response.status_code == 202
    run_until_idle()
    assert Execution.objects.get().result == {"amount": 300}
    assert Event.objects.get().source == "webhook:acme-shop"


def test_duplicate_webhook_delivery_starts_no_second_run(hook, automation):
    for _ in range(3):
        post_webhook(
            {"amount": 300}, HTTP_X_AUTOMATE_EVENT="order.paid", HTTP_IDEMPOTENCY_KEY="evt_1"
        )
        run_until_idle()
    assert Event.objects.count() == 1 and Execution.objects.count() == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"secret": "wrong-secret"},
        {"timestamp": time.time() - 301},
        {"timestamp": time.time() + 600},
    ],
)
def test_badly_signed_or_replayed_webhooks_are_refused(hook, kwargs):
    response = post_webhook({"amount": 1}, HTTP_X_AUTOMATE_EVENT="order.paid", **kwargs)
    assert response.status_code == 401 and response.json()["code"] == "invalid_signature"
    assert not Event.objects.exists()


def test_unsigned_webhook_is_refused(hook):
    response = APIClient().post(
        "/api/v1/webhooks/acme-shop", data=b"{}", content_type="application/json"
    )
    assert response.status_code == 401
    assert not Event.objects.exists()


def test_malformed_signed_body_is_a_normalized_error(hook):
    response = post_webhook(b"{not json", HTTP_X_AUTOMATE_EVENT="x")
    assert response.status_code == 400 and response.json()["code"] == "invalid_input"


def test_webhook_rate_limit_answers_429_with_retry_after(hook):
    with override_settings(AUTOMATE={"RATE_LIMITS": {"webhooks": "2/min"}}):
        codes = [post_webhook({"n": i}, HTTP_X_AUTOMATE_EVENT="ping").status_code for i in range(3)]
    assert codes == [202, 202, 429]


def test_accepted_webhooks_carry_the_ratelimit_headers(hook):
    response = post_webhook({"n": 1}, HTTP_X_AUTOMATE_EVENT="ping")

    assert response.status_code == 202
    assert (response["RateLimit-Limit"], response["RateLimit-Remaining"]) == ("100", "99")
    assert response["RateLimit-Reset"] == "60"


def test_executions_list_filter_detail_and_cancel(api_client, tenant, other_tenant):
    from automate_core.workflows import engine

    mine = engine.start("approval", tenant=tenant, user="a")
    engine.start("approval", tenant=other_tenant, user="b")
    run_until_idle()
    listed = api_client.get("/api/v1/executions?status=waiting").json()["results"]
    assert [r["id"] for r in listed] == [str(mine.pk)]
    detail = api_client.get(f"/api/v1/executions/{mine.pk}").json()
    assert detail["steps"][0]["step_id"] == "ask"
    signalled = api_client.post(
        f"/api/v1/executions/{mine.pk}/signal",
        {"name": "approved", "payload": {"approved": True}},
        format="json",
    )
    assert signalled.status_code == 200
    run_until_idle()
    assert api_client.get(f"/api/v1/executions/{mine.pk}").json()["status"] == "completed"
    again = api_client.post(f"/api/v1/executions/{mine.pk}/cancel")
    assert again.status_code == 409


def test_signal_to_a_run_not_waiting_for_it_is_a_clear_error(api_client, tenant):
    from automate_core.workflows import engine

    run = engine.start("approval", tenant=tenant, user="a")
    run_until_idle()
    response = api_client.post(
        f"/api/v1/executions/{run.pk}/signal", {"name": "nope"}, format="json"
    )
    assert response.status_code == 400
    assert response.json()["details"]["waiting_for"]["name"] == "approved"


def test_other_tenants_executions_are_invisible(api_client, other_tenant):
    from automate_core.workflows import engine

    theirs = engine.start("approval", tenant=other_tenant, user="b")
    assert api_client.get(f"/api/v1/executions/{theirs.pk}").status_code == 404
    assert api_client.post(f"/api/v1/executions/{theirs.pk}/cancel").status_code == 404


def test_dry_run_says_which_automations_would_start_and_why(api_client, automation):
    response = api_client.post(
        "/api/v1/rules/dry-run",
        {"event_type": "order.paid", "payload": {"amount": 50}},
        format="json",
    )
    [result] = response.json()["results"]
    assert result["automation"] == automation.slug and result["would_start"] is False
    assert "false" in result["reason"]
    response = api_client.post(
        "/api/v1/rules/dry-run",
        {"event_type": "order.paid", "payload": {"amount": 500}},
        format="json",
    )
    assert response.json()["results"][0]["would_start"] is True


def test_payloads_are_redacted_unless_the_caller_may_see_them_raw(
    api_client, tenant, django_user_model
):
    from django.contrib.auth.models import Permission

    from automate_core.tenancy.models import APIKey, TenantMembership

    body = {"type": "login", "payload": {"user": "ada", "password": "hunter2-hunter2"}}
    event_id = api_client.post("/api/v1/events", body, format="json").json()["event_id"]
    redacted = api_client.get(f"/api/v1/events/{event_id}").json()["payload"]
    assert redacted == {"user": "ada", "password": "[REDACTED]"}

    _, raw_key = APIKey.issue(tenant=tenant, name="raw", scopes=["events:*", "payloads:raw"])
    raw_client = APIClient()
    raw_client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw_key}")
    assert (
        raw_client.get(f"/api/v1/events/{event_id}").json()["payload"]["password"]
        == "hunter2-hunter2"
    )

    user = django_user_model.objects.create_user("auditor")
    TenantMembership.objects.create(tenant=tenant, user=user)
    session = APIClient()
    session.force_login(user)
    assert session.get(f"/api/v1/events/{event_id}").json()["payload"]["password"] == "[REDACTED]"
    user.user_permissions.add(Permission.objects.get(codename="view_raw_payload"))
    session.force_login(django_user_model.objects.get(pk=user.pk))
    assert (
        session.get(f"/api/v1/events/{event_id}").json()["payload"]["password"] == "hunter2-hunter2"
    )
