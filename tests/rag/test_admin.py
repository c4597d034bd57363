"""Admin pages of the RAG models, their actions, and the audit rows of config changes."""

from __future__ import annotations

import pytest
from django.urls import reverse

from automate_core.governance.models import AuditLog
from rag.models import (
    Chunk,
    Document,
    EmbeddingCacheEntry,
    EmbeddingModel,
    IndexVersion,
    KnowledgeSource,
    RAGEndpoint,
)

from .factories import handbook

pytestmark = pytest.mark.django_db

MODELS = [
    Chunk,
    Document,
    EmbeddingCacheEntry,
    EmbeddingModel,
    IndexVersion,
    KnowledgeSource,
    RAGEndpoint,
]


@pytest.mark.parametrize("model", MODELS, ids=lambda m: m.__name__)
def test_every_rag_model_has_a_changelist_and_a_change_page(admin_client, tenant, model):
    handbook(tenant)
    changelist = reverse(f"admin:rag_{model._meta.model_name}_changelist")
    assert admin_client.get(changelist).status_code == 200
    row = model.objects.first()
    change = reverse(f"admin:rag_{model._meta.model_name}_change", args=[row.pk])
    assert admin_client.get(change).status_code == 200


def test_the_reindex_action_queues_a_build_and_cancel_stops_it(admin_client, tenant):
    endpoint = handbook(tenant)
    admin_client.post(
        reverse("admin:rag_ragendpoint_changelist"),
        {"action": "queue_reindex", "_selected_action": [str(endpoint.pk)]},
    )
    building = IndexVersion.objects.get(endpoint=endpoint, status="building")
    admin_client.post(
        reverse("admin:rag_indexversion_changelist"),
        {"action": "cancel_builds", "_selected_action": [str(building.pk)]},
    )
    assert IndexVersion.objects.get(pk=building.pk).status == "cancelled"
    assert AuditLog.objects.filter(action="rag.endpoint.reindex").exists()


def test_the_sync_action_queues_the_source(admin_client, tenant):
    endpoint = handbook(tenant)
    source = endpoint.sources.get()
    admin_client.post(
        reverse("admin:rag_knowledgesource_changelist"),
        {"action": "queue_sync", "_selected_action": [str(source.pk)]},
    )
    assert KnowledgeSource.objects.get(pk=source.pk).sync_status == "queued"


def test_saving_an_endpoint_in_the_admin_is_audited(admin_client, tenant):
    endpoint = handbook(tenant)
    response = admin_client.post(
        reverse("admin:rag_ragendpoint_change", args=[endpoint.pk]),
        {
            "tenant": tenant.pk,
            "name": "Support",
            "slug": "support",
            "description": "",
            "sources": [str(s.pk) for s in endpoint.sources.all()],
            "embedding_model": endpoint.embedding_model_id,
            "retrieval_config": '{"mode": "keyword"}',
            "access_policy": "{}",
            "chunk_tokens": 0,
            "chunk_overlap": 0,
            "is_active": "on",
            "versions-TOTAL_FORMS": "0",
            "versions-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    entry = AuditLog.objects.get(action="rag.endpoint.change")
    assert entry.data["retrieval_config"] == {"mode": "keyword"}
    assert RAGEndpoint.objects.get(pk=endpoint.pk).retrieval_config == {"mode": "keyword"}
