"""``/api/v1/rag/config/``: sources, endpoints and embedding models over the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import APIKey
from rag.models import EmbeddingModel, IndexVersion, KnowledgeSource, RAGEndpoint

pytestmark = pytest.mark.django_db

BASE = "/api/v1/rag/config"


@pytest.fixture
def embedding_model(tenant):
    return EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")


@pytest.fixture
def source(tenant):
    return KnowledgeSource.objects.create(tenant=tenant, name="Docs", type="api")


def _key_client(tenant, scopes):
    _, raw = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_an_endpoint_is_created_over_sources_named_by_slug(
    api_client, tenant, embedding_model, source
):
    response = api_client.post(
        f"{BASE}/endpoints",
        {"name": "Support", "embedding_model": "minilm", "sources": ["docs"]},
        format="json",
    )
    assert response.status_code == 201, response.content
    endpoint = RAGEndpoint.objects.get(slug="support")
    assert endpoint.tenant_id == tenant.pk
    assert list(endpoint.sources.all()) == [source]
    assert AuditLog.objects.get(action="rag.endpoint.create").target == "rag.endpoint:support"


def test_an_endpoint_cannot_index_another_tenants_source(api_client, other_tenant, embedding_model):
    KnowledgeSource.objects.create(tenant=other_tenant, name="Theirs", type="api")
    response = api_client.post(
        f"{BASE}/endpoints",
        {"name": "Support", "embedding_model": "minilm", "sources": ["theirs"]},
        format="json",
    )
    assert response.status_code == 400
    assert not RAGEndpoint.objects.exists()


def test_an_invalid_access_policy_is_refused(api_client, embedding_model):
    response = api_client.post(
        f"{BASE}/endpoints",
        {"name": "Support", "embedding_model": "minilm", "access_policy": {"nope": 1}},
        format="json",
    )
    assert response.status_code == 400
    assert "access_policy" in response.json()["details"]


def test_reindex_queues_a_build_beside_the_live_version(api_client, tenant, embedding_model):
    RAGEndpoint.objects.create(tenant=tenant, name="Support", embedding_model=embedding_model)
    response = api_client.post(f"{BASE}/endpoints/support/reindex")
    assert response.status_code == 202
    assert IndexVersion.objects.get(pk=response.json()["index_version"]).status == "building"


def test_a_source_of_an_unknown_type_is_refused(api_client):
    response = api_client.post(
        f"{BASE}/sources", {"name": "Docs", "type": "no-such-type"}, format="json"
    )
    assert response.status_code == 400
    assert "type" in response.json()["details"]


def test_a_source_credentials_ref_must_be_a_secret_name(api_client):
    response = api_client.post(
        f"{BASE}/sources",
        {"name": "Docs", "type": "api", "credentials_ref": "ghp_abcdefghijklmnopqrstuvwxyz0123"},
        format="json",
    )
    assert response.status_code == 400
    assert response.json()["code"] == "credential_in_clear"
    assert not KnowledgeSource.objects.exists()


def test_an_embedding_model_in_use_cannot_be_deleted(api_client, tenant, embedding_model):
    RAGEndpoint.objects.create(tenant=tenant, name="Support", embedding_model=embedding_model)
    response = api_client.delete(f"{BASE}/embedding-models/minilm")
    assert response.status_code == 409
    assert EmbeddingModel.objects.filter(pk=embedding_model.pk).exists()
    assert not AuditLog.objects.filter(action="rag.embedding_model.delete").exists()


def test_a_query_key_cannot_reach_the_config(tenant, embedding_model):
    client = _key_client(tenant, ["rag:*", "rag-sources:*"])
    assert client.get(f"{BASE}/embedding-models").status_code == 403
    assert client.get(f"{BASE}/sources").status_code == 403
