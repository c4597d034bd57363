"""``/api/v1/llm/providers`` and ``/api/v1/llm/models``: configs hold SecretRefs, never keys."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import APIKey
from automate_llm.models import LLMModelConfig, LLMProvider

pytestmark = pytest.mark.django_db

PROVIDERS = "/api/v1/llm/providers"
MODELS = "/api/v1/llm/models"
RAW_KEY = "sk-proj-abcdefghijklmnopqrstuvwxyz012345"


@pytest.fixture
def provider(tenant):
    return LLMProvider.objects.create(
        tenant=tenant,
        name="Main",
        provider_type="openai",
        config={"api_key": {"$secret": "OPENAI_KEY"}},
        is_default=True,
    )


def _key_client(tenant, scopes):
    _, raw = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_a_provider_shows_its_secret_refs_not_values(api_client, tenant):
    response = api_client.post(
        PROVIDERS,
        {"name": "OpenAI", "provider_type": "openai",
         "config": {"api_key": {"$secret": "OPENAI_KEY"}, "base_url": "http://localhost:9/v1"}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["config"]["api_key"] == {"$secret": "OPENAI_KEY"}
    assert body["secret_refs"] == ["OPENAI_KEY"]
    assert LLMProvider.objects.get(pk=body["id"]).tenant_id == tenant.pk


def test_a_raw_key_in_the_config_is_refused(api_client):
    response = api_client.post(
        PROVIDERS,
        {"name": "OpenAI", "provider_type": "openai", "config": {"api_key": RAW_KEY}},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "credential_in_clear"
    assert response.json()["details"] == {"paths": ["config.api_key"]}
    assert RAW_KEY not in response.content.decode()
    assert not LLMProvider.objects.exists()


def test_a_raw_key_written_around_the_api_is_never_shown(api_client, tenant):
    LLMProvider.objects.create(
        tenant=tenant, name="Old", provider_type="openai", config={"api_key": RAW_KEY}
    )
    response = api_client.get(f"{PROVIDERS}/old")
    assert response.status_code == 200
    assert RAW_KEY not in response.content.decode()


def test_an_unknown_provider_type_is_refused(api_client):
    response = api_client.post(
        PROVIDERS, {"name": "X", "provider_type": "no-such-plugin"}, format="json"
    )
    assert response.status_code == 400
    assert "provider_type" in response.json()["details"]


def test_a_second_default_provider_is_refused(api_client, provider):
    response = api_client.post(
        PROVIDERS,
        {
            "name": "Other",
            "provider_type": "openai",
            "is_default": True,
            "config": {"api_key": {"$secret": "OTHER_KEY"}},
        },
        format="json",
    )
    assert response.status_code == 400
    assert set(response.json()["details"]) == {"is_default"}


def test_provider_changes_are_audited_like_the_admins(api_client, provider):
    api_client.patch(f"{PROVIDERS}/main", {"is_active": False}, format="json")
    row = AuditLog.objects.get(action="llm_provider.change")
    assert row.target == f"llm_provider:{provider.pk}"
    assert row.data["changed"] == ["is_active"]


def test_a_model_config_names_its_provider_by_slug(api_client, provider):
    response = api_client.post(
        MODELS, {"name": "Fast", "provider": "main", "model_id": "gpt-4o-mini"}, format="json"
    )
    assert response.status_code == 201, response.content
    assert LLMModelConfig.objects.get(slug="fast").provider == provider


def test_a_model_config_cannot_use_another_tenants_provider(api_client, other_tenant):
    LLMProvider.objects.create(tenant=other_tenant, name="Theirs", provider_type="openai")
    response = api_client.post(
        MODELS, {"name": "Fast", "provider": "theirs", "model_id": "gpt-4o"}, format="json"
    )
    assert response.status_code == 400
    assert not LLMModelConfig.objects.exists()


def test_an_unknown_fallback_is_refused(api_client, provider):
    response = api_client.post(
        MODELS,
        {"name": "Fast", "provider": "main", "model_id": "gpt-4o", "fallbacks": ["nope"]},
        format="json",
    )
    assert response.status_code == 400
    assert "fallbacks" in response.json()["details"]


def test_a_chat_key_cannot_read_provider_configs(tenant, provider):
    client = _key_client(tenant, ["llm:*"])
    assert client.get(PROVIDERS).status_code == 403


def test_a_config_read_key_cannot_change_a_provider(tenant, provider):
    client = _key_client(tenant, ["llm-config:read"])
    assert client.get(PROVIDERS).status_code == 200
    assert client.delete(f"{PROVIDERS}/main").status_code == 403
