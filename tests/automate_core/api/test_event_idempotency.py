"""Idempotency keys on POST /api/v1/events (header or body), and list filters that say no."""

from __future__ import annotations

from automate_core.events.models import Event


def post_event(client, body, **headers):
    return client.post("/api/v1/events", body, format="json", **headers)


def test_the_idempotency_key_header_makes_a_repeat_return_the_first_event(api_client):
    body = {"type": "order.paid", "payload": {"order_id": "A-1"}}
    first = post_event(api_client, body, HTTP_IDEMPOTENCY_KEY="order-A-1")
    again = post_event(api_client, body, HTTP_IDEMPOTENCY_KEY="order-A-1")
    assert (first.status_code, first.json()["created"]) == (202, True)
    assert (again.status_code, again.json()["created"]) == (202, False)
    assert again.json()["event_id"] == first.json()["event_id"]
    assert Event.objects.count() == 1


def test_a_repeated_key_with_another_payload_is_a_conflict(api_client):
    post_event(
        api_client, {"type": "order.paid", "payload": {"amount": 1}}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    clash = post_event(
        api_client, {"type": "order.paid", "payload": {"amount": 999}}, HTTP_IDEMPOTENCY_KEY="k-1"
    )
    assert clash.status_code == 409
    assert clash.json()["code"] == "idempotency_key_reused"
    assert Event.objects.get().payload == {"amount": 1}


def test_a_repeated_body_key_with_another_type_is_a_conflict(api_client):
    post_event(api_client, {"type": "a", "payload": {}, "idempotency_key": "k-2"})
    clash = post_event(api_client, {"type": "b", "payload": {}, "idempotency_key": "k-2"})
    assert clash.status_code == 409


def test_header_and_body_keys_that_differ_are_refused(api_client):
    response = post_event(
        api_client,
        {"type": "a", "payload": {}, "idempotency_key": "in-body"},
        HTTP_IDEMPOTENCY_KEY="in-header",
    )
    assert response.status_code == 400 and response.json()["details"]["field"] == "idempotency_key"
    assert not Event.objects.exists()


def test_keys_are_per_tenant(api_client, other_tenant):
    from rest_framework.test import APIClient

    from automate_core.tenancy.models import APIKey

    _, raw = APIKey.issue(tenant=other_tenant, name="other")
    other = APIClient()
    other.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    post_event(api_client, {"type": "a", "payload": {"n": 1}}, HTTP_IDEMPOTENCY_KEY="shared")
    theirs = post_event(other, {"type": "a", "payload": {"n": 2}}, HTTP_IDEMPOTENCY_KEY="shared")
    assert (theirs.status_code, theirs.json()["created"]) == (202, True)


def test_an_unknown_execution_status_filter_is_a_clear_error(api_client):
    response = api_client.get("/api/v1/executions?status=finished")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input" and "completed" in body["details"]["choices"]


def test_a_known_execution_status_filter_lists(api_client):
    assert api_client.get("/api/v1/executions?status=completed").status_code == 200
