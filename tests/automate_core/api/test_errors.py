"""Every API error is a NormalizedError {code, message, details, trace_id} with the right status."""

import uuid

import pytest
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey

pytestmark = [pytest.mark.django_db, pytest.mark.urls("tests.testapp.urls")]


def assert_normalized(response, status, code):
    assert response.status_code == status, response.content
    body = response.json()
    assert set(body) == {"code", "message", "details", "trace_id"}
    assert body["code"] == code
    assert body["message"]
    assert body["trace_id"] == response["X-Trace-Id"]
    return body


def test_missing_credentials_is_401_with_bearer_challenge():
    response = APIClient().get("/api/v1/api-keys")
    assert_normalized(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401():
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Bearer dak_not-a-real-key")
    assert_normalized(client.get("/api/v1/api-keys"), 401, "authentication_failed")


def test_key_without_the_resource_scope_is_403(tenant):
    _, raw = APIKey.issue(tenant=tenant, name="rag only", scopes=["rag:*"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    body = assert_normalized(client.get("/api/v1/api-keys"), 403, "permission_denied")
    assert "api_keys:manage" in body["message"]


def test_validation_error_lists_fields(api_client):
    response = api_client.post("/api/v1/api-keys", {"scopes": "everything"}, format="json")
    body = assert_normalized(response, 400, "validation_error")
    assert set(body["details"]) == {"name", "scopes"}


def test_malformed_json_is_a_parse_error():
    response = APIClient().post(
        "/api/v1/test/open", data="{not json", content_type="application/json"
    )
    assert_normalized(response, 400, "parse_error")


def test_unsupported_media_type_is_415():
    response = APIClient().post("/api/v1/test/open", data="<x/>", content_type="application/xml")
    assert_normalized(response, 415, "unsupported_media_type")


def test_missing_object_is_404(api_client):
    assert_normalized(api_client.get(f"/api/v1/api-keys/{uuid.uuid4()}"), 404, "not_found")


def test_unknown_api_path_is_a_json_404():
    assert_normalized(APIClient().get("/api/v1/no-such-thing"), 404, "not_found")


def test_unknown_widget_path_is_a_json_404():
    response = APIClient().get("/widgets/v1/0/conversations/not-a-uuid/messages")
    assert_normalized(response, 404, "not_found")


def test_a_nul_character_in_a_query_value_is_invalid_input(api_client):
    response = api_client.get("/api/v1/executions", {"workflow": "a\x00b"})
    assert_normalized(response, 400, "invalid_input")


def test_a_nul_character_in_a_path_is_invalid_input(api_client):
    assert_normalized(api_client.get("/api/v1/automations/a%00b"), 400, "invalid_input")


def test_a_related_slug_with_a_nul_character_is_refused_when_parsed(api_client):
    body = {"name": "t", "event_type": "order.paid", "automation": "a\x00b"}
    assert_normalized(api_client.post("/api/v1/triggers", body), 400, "parse_error")


def test_wrong_method_is_405(api_client):
    assert_normalized(api_client.put("/api/v1/tenant", {}), 405, "method_not_allowed")


def test_throttled_is_429_with_retry_after(api_client):
    response = api_client.get("/api/v1/test/throttled")
    body = assert_normalized(response, 429, "throttled")
    assert response["Retry-After"] == "42"
    assert body["details"] == {"retry_after_seconds": 42}


def test_domain_error_keeps_its_code_status_and_details(api_client):
    body = assert_normalized(api_client.get("/api/v1/test/conflict"), 409, "conflict")
    assert body["details"] == {"version": 3}


def test_unexpected_exception_is_500_without_stack_trace_or_message(api_client, caplog):
    response = api_client.get("/api/v1/test/explode")
    body = assert_normalized(response, 500, "internal_error")
    text = response.content.decode()
    assert "hunter2" not in text and "Traceback" not in text and "RuntimeError" not in text
    logged = [r for r in caplog.records if r.name == "automate.api"]
    assert logged and logged[0].trace_id == body["trace_id"]
