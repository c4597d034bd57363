"""The ``openai`` embedding provider: chunks and queries embedded through the LLM gateway against
the local OpenAI wire server, batched, cached, metered and budgeted for the tenant."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from automate_core.governance.models import Budget
from automate_core.testing.runtime import run_until_idle
from automate_core.tracing import trace
from automate_llm.models import LLMRequest, LLMUsage
from automate_llm.testing import Embeddings, OpenAIWire, Rejected
from rag import services
from rag.conf import STORED_DIMENSIONS
from rag.embedders.gateway import GatewayEmbedder
from rag.embeddings import EmbeddingContext, embedder_class
from rag.errors import EmbeddingError
from rag.models import Chunk, EmbeddingCacheEntry, EmbeddingModel

from .conftest import configure_rag
from .factories import HANDBOOK, handbook, make_endpoint, make_source, push
from .test_api import _client

pytestmark = pytest.mark.django_db

MODEL = "text-embedding-3-small"


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


@pytest.fixture
def openai_provider(make_wire_provider, openai_wire):
    """The tenant's default LLM provider, on the OpenAI wire server."""
    return make_wire_provider(openai_wire, is_default=True)


@pytest.fixture
def gateway_model(tenant) -> EmbeddingModel:
    model = EmbeddingModel(tenant=tenant, name="OpenAI", provider="openai", model_id=MODEL)
    model.full_clean()
    model.save()
    return model


def answer_vectors(wire: OpenAIWire, requests: int) -> None:
    """The next ``requests`` embedding requests get vectors of the index's size (the wire
    server's default is 8 numbers)."""
    wire.script(*[Embeddings(dimensions=STORED_DIMENSIONS)] * requests)


def embedding_inputs(wire: OpenAIWire) -> list[list[str]]:
    return [r.body["input"] for r in wire.requests if r.path.endswith("/embeddings")]


def exhaust_budget(tenant) -> None:
    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=0,
    )


def test_the_provider_is_installed_as_openai() -> None:
    assert embedder_class("openai") is GatewayEmbedder


@pytest.mark.parametrize(
    ("model_id", "config", "problem"),
    [
        ("", {}, "model_id must name"),
        (MODEL, {"dimensions": 384}, "unknown: dimensions"),
        (MODEL, {"provider": ""}, "config.provider must be an LLM provider slug"),
        (MODEL, {"request_dimensions": "yes"}, "request_dimensions must be true or false"),
    ],
)
def test_a_bad_model_id_or_config_is_refused_when_saved(tenant, model_id, config, problem) -> None:
    model = EmbeddingModel(
        tenant=tenant, name="OpenAI", provider="openai", model_id=model_id, config=config
    )
    with pytest.raises(ValidationError, match=problem):
        model.full_clean()


def test_a_reindex_embeds_the_chunks_through_the_gateway_in_batches(
    openai_provider, openai_wire, gateway_model, tenant, settings
) -> None:
    configure_rag(settings, EMBEDDING_BATCH_SIZE=2)
    answer_vectors(openai_wire, 2)

    endpoint = handbook(tenant, model=gateway_model)

    chunks = Chunk.objects.filter(index_version=endpoint.live_version)
    sent = embedding_inputs(openai_wire)
    assert [len(batch) for batch in sent] == [2, 1]
    assert {r.body["model"] for r in openai_wire.requests} == {MODEL}
    assert sorted(text for batch in sent for text in batch) == sorted(
        f"{chunk.title}\n\n{chunk.text}" for chunk in chunks
    )
    assert openai_wire.pending == 0


def test_every_batch_is_metered_to_the_tenant_with_the_trace_id(
    openai_provider, openai_wire, gateway_model, tenant, settings
) -> None:
    configure_rag(settings, EMBEDDING_BATCH_SIZE=2)
    answer_vectors(openai_wire, 2)

    with trace("trace-embed-1"):
        handbook(tenant, model=gateway_model)
    run_until_idle()

    requests = LLMRequest.objects.for_tenant(tenant)
    assert [(r.model, r.success, r.trace_id) for r in requests] == [
        (MODEL, True, "trace-embed-1")
    ] * 2
    usage = LLMUsage.objects.for_tenant(tenant)
    assert sum(u.input_tokens for u in usage) > 0
    assert {u.request.provider_id for u in usage} == {openai_provider.pk}


def test_a_reindex_of_unchanged_text_sends_no_embedding_request(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 1)
    endpoint = handbook(tenant, model=gateway_model)
    before = len(openai_wire.requests)

    version = services.reindex(endpoint)

    assert version.status == "live"
    assert len(openai_wire.requests) == before == 1


def test_a_query_is_embedded_through_the_gateway(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 2)
    endpoint = handbook(tenant, model=gateway_model)

    result = services.query(endpoint, "How long do refunds take?")

    assert openai_wire.last.body["input"] == ["How long do refunds take?"]
    assert result.results
    run_until_idle()
    assert LLMRequest.objects.for_tenant(tenant).filter(success=True).count() == 2


def test_an_exhausted_budget_fails_the_build_and_the_live_version_keeps_serving(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 1)
    endpoint = handbook(tenant, model=gateway_model)
    live = endpoint.live_version
    EmbeddingCacheEntry.objects.for_tenant(tenant).delete()  # every chunk must be embedded again
    exhaust_budget(tenant)

    failed = services.reindex(endpoint)

    endpoint.refresh_from_db()
    assert failed.status == "failed"
    assert failed.error.startswith("BudgetExceeded:")
    assert endpoint.live_version == live
    assert len(openai_wire.requests) == 1  # the refused build never reached the provider
    assert LLMRequest.objects.for_tenant(tenant).filter(error_code="budget_exceeded").exists()


def test_a_sync_over_budget_fails_the_source_saying_so(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 1)
    endpoint = handbook(tenant, model=gateway_model)
    run_until_idle()
    live_chunks = Chunk.objects.filter(index_version=endpoint.live_version).count()
    exhaust_budget(tenant)
    source = endpoint.sources.get()
    push(source, "returns.md", "# Returns\n\nReturns are free within thirty days.\n")

    services.queue_sync(source)
    run_until_idle()

    source.refresh_from_db()
    assert source.sync_status == "failed"
    assert source.last_error.startswith("BudgetExceeded:")
    assert Chunk.objects.filter(index_version=endpoint.live_version).count() == live_chunks
    assert len(openai_wire.requests) == 1


def test_a_query_over_budget_answers_budget_exceeded(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 1)
    handbook(tenant, model=gateway_model, slug="support")
    exhaust_budget(tenant)

    response = _client(tenant).post(
        "/api/v1/rag/support/query", {"query": "express delivery"}, format="json"
    )

    assert response.status_code == 402
    assert response.json()["code"] == "budget_exceeded"
    assert len(openai_wire.requests) == 1


def test_a_query_without_an_llm_provider_answers_llm_not_configured(
    openai_provider, openai_wire, gateway_model, tenant
) -> None:
    answer_vectors(openai_wire, 1)
    handbook(tenant, model=gateway_model, slug="support")
    openai_provider.is_active = False
    openai_provider.save()

    response = _client(tenant).post(
        "/api/v1/rag/support/query", {"query": "express delivery"}, format="json"
    )

    assert response.status_code == 503
    assert response.json()["code"] == "llm_not_configured"


def test_a_build_without_an_llm_provider_fails_saying_so(gateway_model, tenant) -> None:
    endpoint = handbook(tenant)  # built with the counting provider
    endpoint.embedding_model = gateway_model
    endpoint.save()

    failed = services.reindex(endpoint)

    assert failed.status == "failed"
    assert failed.error.startswith("NoProviderConfigured:")


def test_the_provider_named_in_config_is_used(
    make_wire_provider, openai_provider, openai_wire, tenant
) -> None:
    with OpenAIWire() as other:
        make_wire_provider(other, slug="embeddings")
        answer_vectors(other, 1)
        model = EmbeddingModel.objects.create(
            tenant=tenant,
            name="Other",
            provider="openai",
            model_id=MODEL,
            config={"provider": "embeddings"},
        )

        model.batch_embed(["hello"])

    assert embedding_inputs(other) == [["hello"]]
    assert openai_wire.requests == []


def test_text_embedding_3_models_are_asked_for_the_index_dimensions(
    openai_provider, openai_wire, gateway_model
) -> None:
    vectors = gateway_model.batch_embed(["hello", "world"])

    assert [len(v) for v in vectors] == [STORED_DIMENSIONS] * 2
    assert [r.body.get("dimensions") for r in openai_wire.requests] == [STORED_DIMENSIONS]


def test_other_models_are_not_sent_dimensions_unless_asked(
    openai_provider, openai_wire, tenant
) -> None:
    plain = EmbeddingModel.objects.create(
        tenant=tenant, name="TEI", provider="openai", model_id="bge-small-en-v1.5"
    )
    asked = EmbeddingModel.objects.create(
        tenant=tenant,
        name="Asked",
        provider="openai",
        model_id="embed-small",
        config={"request_dimensions": True},
    )
    answer_vectors(openai_wire, 1)

    plain.batch_embed(["hello"])
    asked.batch_embed(["hello"])

    assert [r.body.get("dimensions") for r in openai_wire.requests] == [None, STORED_DIMENSIONS]


def test_vectors_of_other_dimensions_are_an_embedding_error(
    openai_provider, openai_wire, tenant
) -> None:
    model = EmbeddingModel.objects.create(
        tenant=tenant,
        name="Full",
        provider="openai",
        model_id=MODEL,
        config={"request_dimensions": False},
    )
    openai_wire.script(Embeddings(dimensions=1536))

    with pytest.raises(EmbeddingError, match="1536-dimension"):
        model.batch_embed(["hello"])

    assert not EmbeddingCacheEntry.objects.for_tenant(tenant).exists()


def test_a_call_without_a_tenant_is_an_embedding_error() -> None:
    embedder = GatewayEmbedder(model_id=MODEL, dimensions=STORED_DIMENSIONS, config={})

    with pytest.raises(EmbeddingError, match="charges a tenant"):
        embedder.embed_documents(["x"], EmbeddingContext(tenant_id=None))


def test_a_paid_batch_stays_metered_and_cached_when_a_later_batch_fails(
    openai_provider, openai_wire, gateway_model, tenant, settings
) -> None:
    configure_rag(settings, EMBEDDING_BATCH_SIZE=2)
    answer_vectors(openai_wire, 1)
    openai_wire.script(Rejected())
    source = make_source(tenant)
    for name, text in HANDBOOK.items():
        push(source, name, text)
    run_until_idle()  # the pushes' index jobs: no endpoint uses the source yet
    endpoint = make_endpoint(tenant, source, model=gateway_model)

    version = services.reindex(endpoint)
    run_until_idle()

    assert (version.status, version.error) == (
        "failed",
        "ProviderRejected: openai answered 400: Invalid request.",
    )
    assert LLMUsage.objects.for_tenant(tenant).count() == 1
    assert EmbeddingCacheEntry.objects.for_tenant(tenant).count() == 2
    assert [len(batch) for batch in embedding_inputs(openai_wire)] == [2, 1]
