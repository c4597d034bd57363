"""Query: hybrid retrieval, fusion, filters, forced filters and re-ranking."""

from __future__ import annotations

import pytest

from automate_core.errors import InvalidInputError
from rag import search, services
from rag.errors import IndexNotReady, InvalidRetrievalConfig
from rag.search import RetrievalConfig

from .conftest import configure_rag
from .factories import handbook, make_endpoint, make_source

pytestmark = pytest.mark.django_db


def test_the_local_model_answers_a_paraphrase_with_the_right_chunk(tenant):
    endpoint = handbook(tenant, provider="local")
    result = services.query(endpoint, "How long until I get my money back?", top_k=2)
    best = result.results[0]
    assert best.document["external_id"] == "refunds.md"
    assert best.title == "Refunds"
    assert best.metadata["topic"] == "refunds"
    assert result.index_version["number"] == 1
    assert result.timings["total_ms"] > 0 and "embed_ms" in result.timings
    assert result.trace_id


def test_full_text_finds_an_exact_term_the_vectors_know_nothing_about(tenant):
    endpoint = handbook(tenant)  # hash vectors: only the keyword side carries meaning
    result = services.query(endpoint, "two-factor authentication", top_k=3)
    assert result.results[0].document["external_id"] == "security.md"
    assert result.results[0].ranks["keyword_rank"] == 1


def test_highlights_mark_the_query_words_and_escape_the_text(tenant):
    endpoint = handbook(tenant)
    result = services.query(endpoint, "warehouse delivery", top_k=1)
    (highlight, *_) = result.results[0].highlights
    assert "<mark>warehouse</mark>" in highlight
    assert "<mark>delivery</mark>" in highlight


def test_keyword_mode_skips_the_embedding_call(tenant):
    endpoint = handbook(tenant, retrieval_config={"mode": "keyword"})
    result = services.query(endpoint, "Lyon warehouse")
    assert "embed_ms" not in result.timings and "vector_ms" not in result.timings
    assert result.results[0].document["external_id"] == "shipping.md"


def test_fusion_adds_weighted_reciprocal_ranks():
    config = RetrievalConfig(fusion="rrf", vector_weight=2.0, keyword_weight=1.0, rrf_k=10)
    fused = search.fuse([(1, 0.1), (2, 0.2)], [(2, 5.0), (3, 4.0)], config)
    scores = {c.chunk_id: round(c.score, 6) for c in fused}
    assert scores == {
        1: round(2 / 11, 6),
        2: round(2 / 12 + 1 / 11, 6),
        3: round(1 / 12, 6),
    }
    assert [c.chunk_id for c in fused] == [2, 1, 3]


def test_a_zero_weight_silences_a_retriever():
    config = RetrievalConfig(keyword_weight=0.0)
    fused = search.fuse([(1, 0.1), (2, 0.2)], [(2, 5.0), (3, 4.0)], config)
    assert [c.chunk_id for c in fused][:2] == [1, 2]


def test_filters_narrow_the_results_to_matching_metadata(tenant):
    endpoint = handbook(tenant)
    result = services.query(endpoint, "delivery refunds security", filters={"topic": "shipping"})
    assert {r.metadata["topic"] for r in result.results} == {"shipping"}


def test_forced_filters_are_anded_with_the_callers(tenant):
    endpoint = handbook(
        tenant, access_policy={"forced_filters": {"topic": ["refunds", "shipping"]}}
    )
    allowed = services.query(endpoint, "account security passwords", top_k=5)
    assert {r.metadata["topic"] for r in allowed.results} <= {"refunds", "shipping"}
    widened = services.query(endpoint, "passwords", filters={"topic": "security"})
    assert widened.results == []


def test_a_configured_reranker_reorders_the_fused_candidates(tenant, settings):
    configure_rag(settings, RERANKERS={"reverse": "tests.rag.rerankers.reverse"})
    endpoint = handbook(tenant)
    plain = services.query(endpoint, "delivery", top_k=3)
    endpoint.retrieval_config = {"reranker": "reverse", "candidates": 3}
    reranked = services.query(endpoint, "delivery", top_k=3)
    assert [r.chunk_id for r in reranked.results] == [r.chunk_id for r in plain.results][::-1]
    assert "rerank_ms" in reranked.timings


def test_a_reranker_that_is_not_configured_is_refused(tenant):
    endpoint = handbook(tenant, retrieval_config={"reranker": "os.system"})
    with pytest.raises(InvalidRetrievalConfig, match="not configured"):
        services.query(endpoint, "delivery")


def test_an_endpoint_without_a_live_version_says_so(tenant):
    endpoint = make_endpoint(tenant, make_source(tenant))
    with pytest.raises(IndexNotReady):
        services.query(endpoint, "anything")


@pytest.mark.parametrize("top_k", [0, 101, "5", True])
def test_top_k_out_of_range_is_invalid_input(tenant, top_k):
    endpoint = handbook(tenant)
    with pytest.raises(InvalidInputError, match="top_k"):
        services.query(endpoint, "delivery", top_k=top_k)


def test_an_empty_query_is_invalid_input(tenant):
    endpoint = handbook(tenant)
    with pytest.raises(InvalidInputError, match="query"):
        services.query(endpoint, "   ")
