"""``/api/v1/webhook-sources``: signed webhook sources name their secret, never hold it."""

from __future__ import annotations

import pytest

from automate_core.events.models import WebhookSource
from automate_core.governance.models import AuditLog

pytestmark = pytest.mark.django_db

BASE = "/api/v1/webhook-sources"


def test_a_source_is_created_with_the_name_of_its_secret(api_client, tenant):
    response = api_client.post(
        BASE, {"source": "shop", "secret_ref": {"$secret": "SHOP_HOOK"}}, format="json"
    )
    assert response.status_code == 201
    body = response.json()
    assert (body["secret_ref"], body["url"]) == ("SHOP_HOOK", "/api/v1/webhooks/shop")
    assert WebhookSource.objects.get(source="shop").tenant_id == tenant.pk


def test_a_secret_value_where_its_name_belongs_is_refused(api_client):
    response = api_client.post(
        BASE,
        {"source": "shop", "secret_ref": "whsec_0123456789abcdefghijklmnop"},
        format="json",
    )
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "credential_in_clear"
    assert "whsec_0123456789" not in response.content.decode()
    assert not WebhookSource.objects.exists()


def test_a_source_name_taken_by_another_tenant_is_a_conflict(api_client, other_tenant):
    WebhookSource.objects.create(tenant=other_tenant, source="shop", secret_ref="X")
    response = api_client.post(BASE, {"source": "shop", "secret_ref": "MINE"}, format="json")
    assert response.status_code == 409


def test_disabling_a_source_is_audited(api_client, tenant):
    hook = WebhookSource.objects.create(tenant=tenant, source="shop", secret_ref="SHOP_HOOK")
    response = api_client.patch(f"{BASE}/shop", {"is_enabled": False}, format="json")
    assert response.status_code == 200
    row = AuditLog.objects.get(action="webhook_source.change")
    assert row.target == f"webhook_source:{hook.pk}" and row.data["changed"] == ["is_enabled"]
