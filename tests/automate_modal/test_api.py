"""``/api/v1/modal/``: spawn, read, cancel and follow jobs, scoped to the tenant and the key."""

from __future__ import annotations

from decimal import Decimal

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import Budget
from automate_core.tenancy.models import APIKey
from automate_modal.models import ModalEndpoint, ModalJob

from .jobs import poll_now

pytestmark = pytest.mark.django_db


def client_for(tenant, scopes=None) -> APIClient:
    _, raw = APIKey.issue(tenant=tenant, name="k", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def spawn(client, endpoint="whisper", **body):
    return client.post(f"/api/v1/modal/{endpoint}/jobs", {"input": {"a": 1}, **body}, format="json")


def test_spawn_returns_202_with_the_running_job(cloud, endpoint, api_client):
    response = spawn(api_client)
    assert response.status_code == 202, response.json()
    body = response.json()
    assert body["status"] == "running"
    assert body["endpoint"] == "whisper"
    assert body["attempts"][0]["gpu"] == "L4"
    assert "hold" not in body["attempts"][0]
    assert cloud.spawned[0].args == ({"a": 1},)


def test_the_same_idempotency_key_returns_the_same_job(cloud, endpoint, api_client):
    first = spawn(api_client, idempotency_key="order-1").json()
    again = spawn(api_client, idempotency_key="order-1").json()
    assert again["id"] == first["id"]
    assert len(cloud.spawned) == 1


def test_a_job_is_read_with_its_output_and_usage(cloud, endpoint, api_client):
    job_id = spawn(api_client).json()["id"]
    cloud.finish(cloud.spawned[0].object_id, {"text": "hi"})
    poll_now()
    body = api_client.get(f"/api/v1/modal/jobs/{job_id}").json()
    assert body["status"] == "succeeded"
    assert body["output"] == {"text": "hi"}
    assert Decimal(body["cost"]) == ModalJob.objects.get(pk=job_id).cost


def test_cancel_cancels_the_call_and_a_second_cancel_is_a_conflict(cloud, endpoint, api_client):
    job_id = spawn(api_client).json()["id"]
    response = api_client.post(f"/api/v1/modal/jobs/{job_id}/cancel")
    assert response.status_code == 200
    assert response.json()["status"] == "cancelled"
    assert cloud.spawned[0].cancelled
    again = api_client.post(f"/api/v1/modal/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert again.json()["code"] == "conflict"


def test_logs_show_the_attempts(cloud, endpoint, api_client):
    job_id = spawn(api_client).json()["id"]
    body = api_client.get(f"/api/v1/modal/jobs/{job_id}/logs").json()
    assert body["job_id"] == job_id
    assert [a["gpu"] for a in body["attempts"]] == ["L4"]


def test_a_spawn_over_budget_is_a_402_and_spawns_nothing(cloud, endpoint, tenant, api_client):
    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period="total",
        limit_cost=Decimal("0.01"),
    )
    response = spawn(api_client)
    assert response.status_code == 402
    assert response.json()["code"] == "budget_exceeded"
    assert cloud.spawned == []


def test_a_spawn_over_the_api_keys_own_budget_is_a_402(cloud, endpoint, tenant):
    key, raw = APIKey.issue(tenant=tenant, name="batch")
    Budget.objects.create(
        tenant=tenant,
        scope_type="api_key",
        scope_id=str(key.pk),
        period="total",
        limit_cost=Decimal("0.01"),
    )
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    assert spawn(client).status_code == 402
    assert spawn(client_for(tenant)).status_code == 202
    assert len(cloud.spawned) == 1


def test_an_unknown_endpoint_is_a_404(cloud, endpoint, api_client):
    response = spawn(api_client, endpoint="nope")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_another_tenants_endpoint_and_jobs_are_not_found(cloud, endpoint, other_tenant, api_client):
    job_id = spawn(api_client).json()["id"]
    outsider = client_for(other_tenant)
    assert spawn(outsider).status_code == 404
    assert outsider.get(f"/api/v1/modal/jobs/{job_id}").status_code == 404
    assert outsider.post(f"/api/v1/modal/jobs/{job_id}/cancel").status_code == 404
    assert ModalJob.objects.get(pk=job_id).status == "running"


def test_a_key_scoped_to_another_endpoint_is_refused(cloud, endpoint, tenant, api_client):
    ModalEndpoint.objects.create(tenant=tenant, name="SDXL", function_name="draw")
    job_id = spawn(api_client).json()["id"]
    scoped = client_for(tenant, scopes=["modal:sdxl"])
    assert spawn(scoped).status_code == 403
    assert scoped.get(f"/api/v1/modal/jobs/{job_id}").status_code == 403
    allowed = client_for(tenant, scopes=["modal:whisper"])
    assert allowed.get(f"/api/v1/modal/jobs/{job_id}").status_code == 200


def test_the_api_is_in_the_openapi_schema(api_client):
    paths = APIClient().get("/api/schema/", HTTP_ACCEPT="application/json").json()["paths"]
    assert "/api/v1/modal/{endpoint}/jobs" in paths
    assert "/api/v1/modal/callback/{job}" in paths
