"""Embeddings: the offline local model, the content-hash cache, batching and shape checks."""

from __future__ import annotations

import math

import pytest

from rag.embeddings import EmbedStats, embed_documents
from rag.errors import EmbeddingError
from rag.models import EmbeddingCacheEntry, EmbeddingModel

from .conftest import configure_rag
from .embedders import CountingEmbedder

pytestmark = pytest.mark.django_db


def _cosine(a, b):
    return sum(x * y for x, y in zip(a, b, strict=True))


def test_the_local_model_embeds_offline_with_normalised_384_dimension_vectors(local_model):
    refund, office = local_model.batch_embed(
        [
            "Refund policy: we give your money back within 30 days.",
            "Our office is located in central Paris.",
        ]
    )
    question = local_model.embed("How do I get my money back?")
    assert len(refund) == len(office) == 384
    assert math.isclose(math.sqrt(sum(x * x for x in refund)), 1.0, rel_tol=1e-4)
    assert _cosine(question, refund) > _cosine(question, office) + 0.2


def test_unchanged_text_is_never_embedded_twice(counting_model):
    texts = ["alpha", "beta", "gamma"]
    first = counting_model.batch_embed(texts)
    stats = EmbedStats()
    again = embed_documents(counting_model, [*texts, "delta"], stats=stats)
    assert again[:3] == first
    assert CountingEmbedder.calls == [texts, ["delta"]]
    assert (stats.cached, stats.embedded) == (3, 1)


def test_duplicate_texts_in_one_call_are_embedded_once(counting_model):
    vectors = counting_model.batch_embed(["same", "other", "same"])
    assert vectors[0] == vectors[2] != vectors[1]
    assert CountingEmbedder.calls == [["same", "other"]]


def test_batches_respect_the_provider_and_the_setting(counting_model, settings):
    counting_model.batch_embed([f"t{i}" for i in range(7)])
    assert [len(c) for c in CountingEmbedder.calls] == [3, 3, 1]  # provider max 3
    CountingEmbedder.calls.clear()
    configure_rag(settings, EMBEDDING_BATCH_SIZE=2)
    counting_model.batch_embed([f"u{i}" for i in range(5)])
    assert [len(c) for c in CountingEmbedder.calls] == [2, 2, 1]


def test_the_cache_is_per_embedding_model(counting_model, tenant):
    other = EmbeddingModel.objects.create(
        tenant=tenant, name="Other", provider="counting", model_id="hash"
    )
    counting_model.batch_embed(["shared"])
    other.batch_embed(["shared"])
    assert len(CountingEmbedder.calls) == 2


def test_vectors_of_the_wrong_dimensions_are_refused_and_not_cached(tenant):
    model = EmbeddingModel.objects.create(tenant=tenant, name="W", provider="wrong-dimensions")
    with pytest.raises(EmbeddingError, match="3-dimension"):
        model.batch_embed(["text"])
    assert not EmbeddingCacheEntry.objects.for_tenant(tenant).exists()


def test_a_provider_failure_is_an_embedding_error_naming_the_provider(tenant):
    model = EmbeddingModel.objects.create(tenant=tenant, name="B", provider="broken")
    with pytest.raises(EmbeddingError, match="'broken' failed: ConnectionError"):
        model.batch_embed(["text"])


def test_an_unknown_provider_is_an_embedding_error_listing_the_installed_ones(tenant):
    model = EmbeddingModel.objects.create(tenant=tenant, name="X", provider="nope")
    with pytest.raises(EmbeddingError, match="Available: local"):
        model.batch_embed(["text"])


def test_the_local_provider_refuses_another_model_id(tenant):
    model = EmbeddingModel.objects.create(tenant=tenant, name="L", model_id="bge-large")
    with pytest.raises(EmbeddingError, match="all-MiniLM-L6-v2"):
        model.batch_embed(["text"])
