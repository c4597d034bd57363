"""Models: tenant scoping, invariants, and the database objects the migration creates."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.db import IntegrityError, connection, transaction

from automate_core.base import InvalidTransition
from rag.models import Chunk, Document, EmbeddingModel, IndexVersion, KnowledgeSource, RAGEndpoint

pytestmark = pytest.mark.django_db


def _endpoint(tenant, name="Support") -> RAGEndpoint:
    model = EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")
    return RAGEndpoint.objects.create(tenant=tenant, name=name, embedding_model=model)


def test_the_same_slug_is_allowed_in_two_tenants_but_not_twice_in_one(tenant, other_tenant):
    a = _endpoint(tenant)
    b = _endpoint(other_tenant)
    assert a.slug == b.slug == "support"
    with transaction.atomic(), pytest.raises(IntegrityError):
        RAGEndpoint.objects.create(
            tenant=tenant, name="Other", slug="support", embedding_model=a.embedding_model
        )


def test_for_tenant_returns_only_that_tenants_sources(tenant, other_tenant):
    KnowledgeSource.objects.create(tenant=tenant, name="Docs")
    KnowledgeSource.objects.create(tenant=other_tenant, name="Docs")
    assert KnowledgeSource.objects.for_tenant(tenant).get().tenant == tenant


def test_embedding_model_must_match_the_stored_dimensions(tenant):
    model = EmbeddingModel(tenant=tenant, name="Big", dimensions=1536)
    with pytest.raises(ValidationError, match="384"):
        model.full_clean()


def test_endpoint_rejects_an_invalid_access_policy(tenant):
    endpoint = _endpoint(tenant)
    endpoint.access_policy = {"forced_filters": {"lang": {"$regex": "x"}}}
    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()
    assert "access_policy" in caught.value.message_dict


def test_endpoint_rejects_an_unknown_retrieval_option(tenant):
    endpoint = _endpoint(tenant)
    endpoint.retrieval_config = {"vector_wieght": 2}
    with pytest.raises(ValidationError) as caught:
        endpoint.full_clean()
    assert "retrieval_config" in caught.value.message_dict


def test_a_cancelled_build_can_never_go_live(tenant):
    endpoint = _endpoint(tenant)
    version = IndexVersion.objects.create(
        tenant=tenant,
        endpoint=endpoint,
        number=1,
        embedding_model=endpoint.embedding_model,
        chunk_tokens=200,
        chunk_overlap=40,
    )
    stale = IndexVersion.objects.get(pk=version.pk)
    version.transition_to("cancelled")
    with pytest.raises(InvalidTransition):
        stale.transition_to("live")
    assert IndexVersion.objects.get(pk=version.pk).status == "cancelled"


def test_chunks_carry_no_full_text_vector_to_write():
    """The keyword side reads BM25 postings; a tsvector column, trigger or GIN index on chunks
    would only slow every insert."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM information_schema.columns "
            "WHERE table_name = 'rag_chunk' AND data_type = 'tsvector'"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = 'rag_chunk'::regclass "
            "AND NOT tgisinternal"
        )
        assert cursor.fetchall() == []


def test_deleting_a_document_removes_its_chunks_from_every_version(tenant):
    endpoint = _endpoint(tenant)
    source = KnowledgeSource.objects.create(tenant=tenant, name="Docs")
    document = Document.objects.create(
        tenant=tenant, source=source, external_id="a.txt", content_hash="h"
    )
    for number in (1, 2):
        version = IndexVersion.objects.create(
            tenant=tenant,
            endpoint=endpoint,
            number=number,
            embedding_model=endpoint.embedding_model,
            chunk_tokens=200,
            chunk_overlap=40,
        )
        Chunk.objects.create(
            tenant=tenant,
            index_version=version,
            document=document,
            position=0,
            text="x",
            token_count=1,
            content_hash="c",
            document_hash="h",
            embedding=[1.0] * 384,
        )
    document.delete()
    assert not Chunk.objects.for_tenant(tenant).exists()


def test_a_source_config_is_checked_by_its_type(tenant):
    source = KnowledgeSource(tenant=tenant, name="Web", type="url", config={"urls": []})
    with pytest.raises(ValidationError) as caught:
        source.full_clean()
    assert "at least one URL" in str(caught.value.message_dict["config"])


def test_an_unknown_source_type_is_refused_with_the_installed_ones(tenant):
    source = KnowledgeSource(tenant=tenant, name="Ftp", type="ftp")
    with pytest.raises(ValidationError) as caught:
        source.full_clean()
    assert "sitemap" in str(caught.value.message_dict["type"])


def test_an_unknown_embedding_provider_is_refused(tenant):
    model = EmbeddingModel(tenant=tenant, name="X", provider="nope")
    with pytest.raises(ValidationError) as caught:
        model.full_clean()
    assert "Available: local" in str(caught.value.message_dict["provider"])
