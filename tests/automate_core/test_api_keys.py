"""API keys: stored hashed, shown once, scoped, revocable, with last-used time."""

import hashlib
from datetime import timedelta

import pytest
from django.utils import timezone
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey

pytestmark = pytest.mark.django_db


def client_for(raw):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_only_the_hash_of_the_key_is_stored(tenant):
    key, raw = APIKey.issue(tenant=tenant, name="ci")
    stored = APIKey.objects.values().get(pk=key.pk)
    assert raw not in str(stored)
    assert stored["key_hash"] == hashlib.sha256(raw.encode()).hexdigest()
    assert raw.startswith(stored["prefix"])


def test_issued_keys_are_unique_and_high_entropy(tenant):
    raws = {APIKey.issue(tenant=tenant, name=str(i))[1] for i in range(20)}
    assert len(raws) == 20
    assert all(len(raw) >= 40 for raw in raws)


def test_key_authenticates_for_its_tenant(tenant, api_key):
    response = client_for(api_key[1]).get("/api/v1/tenant")
    assert response.status_code == 200
    assert response.json()["slug"] == tenant.slug


def test_revoked_key_is_refused(api_key):
    key, raw = api_key
    key.revoke()
    assert client_for(raw).get("/api/v1/tenant").status_code == 401


def test_expired_key_is_refused(tenant):
    _, raw = APIKey.issue(
        tenant=tenant, name="old", expires_at=timezone.now() - timedelta(seconds=1)
    )
    assert client_for(raw).get("/api/v1/tenant").status_code == 401


def test_key_of_a_deactivated_tenant_is_refused(tenant, api_key):
    tenant.is_active = False
    tenant.save()
    assert client_for(api_key[1]).get("/api/v1/tenant").status_code == 401


def test_use_records_last_used_time(api_key):
    key, raw = api_key
    assert key.last_used_at is None
    client_for(raw).get("/api/v1/tenant")
    key.refresh_from_db()
    assert key.last_used_at is not None


@pytest.mark.parametrize(
    ("scopes", "resource", "allowed"),
    [
        ([], "rag:support", True),
        (["rag:support"], "rag:support", True),
        (["rag:support"], "rag:sales", False),
        (["rag:*"], "rag:sales", True),
        (["workflow:*"], "rag:sales", False),
        (["rag:support"], "rag:support-internal", False),
    ],
)
def test_scopes_limit_resources(tenant, scopes, resource, allowed):
    key, _ = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    assert key.allows(resource) is allowed


def test_create_endpoint_shows_the_key_once(api_client):
    response = api_client.post(
        "/api/v1/api-keys", {"name": "deploy", "scopes": ["rag:*"]}, format="json"
    )
    assert response.status_code == 201
    created = response.json()
    assert created["key"].startswith("dak_")
    assert created["scopes"] == ["rag:*"]
    again = api_client.get(f"/api/v1/api-keys/{created['id']}").json()
    assert "key" not in again
    assert client_for(created["key"]).get("/api/v1/tenant").status_code == 200


def test_delete_endpoint_revokes_and_keeps_the_row(api_client, tenant):
    key, raw = APIKey.issue(tenant=tenant, name="temp")
    assert api_client.delete(f"/api/v1/api-keys/{key.pk}").status_code == 204
    key.refresh_from_db()
    assert key.revoked_at is not None
    assert client_for(raw).get("/api/v1/tenant").status_code == 401


def test_keys_never_see_another_tenants_keys(api_client, other_tenant):
    theirs, _ = APIKey.issue(tenant=other_tenant, name="theirs")
    listed = [row["name"] for row in api_client.get("/api/v1/api-keys").json()["results"]]
    assert "theirs" not in listed
    assert api_client.get(f"/api/v1/api-keys/{theirs.pk}").status_code == 404
    assert api_client.delete(f"/api/v1/api-keys/{theirs.pk}").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None


def test_session_user_acts_for_their_tenant(tenant, other_tenant, django_user_model):
    from automate_core.tenancy.models import TenantMembership

    user = django_user_model.objects.create_user("member")
    TenantMembership.objects.create(tenant=tenant, user=user)
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/tenant").json()["slug"] == tenant.slug


def test_user_with_several_tenants_picks_one_with_the_header(
    tenant, other_tenant, django_user_model
):
    from automate_core.tenancy.models import TenantMembership

    user = django_user_model.objects.create_user("consultant")
    TenantMembership.objects.create(tenant=tenant, user=user)
    TenantMembership.objects.create(tenant=other_tenant, user=user)
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/tenant").status_code == 403
    picked = client.get("/api/v1/tenant", HTTP_X_TENANT=other_tenant.slug)
    assert picked.json()["slug"] == other_tenant.slug


def test_user_cannot_pick_a_tenant_they_do_not_belong_to(tenant, other_tenant, django_user_model):
    from automate_core.tenancy.models import TenantMembership

    user = django_user_model.objects.create_user("outsider")
    TenantMembership.objects.create(tenant=tenant, user=user)
    client = APIClient()
    client.force_login(user)
    assert client.get("/api/v1/tenant", HTTP_X_TENANT=other_tenant.slug).status_code == 403
