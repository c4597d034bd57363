"""Grounded answers (``rag.services.answer`` / ``stream_answer``) and the ``rag.answer`` step,
against the local OpenAI and Anthropic wire servers (tests using ``wire`` run once for each)."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError

from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_llm.errors import NoProviderConfigured
from automate_llm.models import LLMModelConfig, LLMRequest, LLMUsage
from automate_llm.services import CallContext
from automate_llm.testing import CutStream, Reply
from rag import services
from rag.errors import InvalidRetrievalConfig
from rag.services import cited_markers

from .embedders import CountingEmbedder
from .factories import handbook

pytestmark = pytest.mark.django_db

SHIPPING = "Orders ship from our Lyon warehouse."
REFUNDS = "Customers are refunded within five business days"


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


def recorded(tenant) -> LLMRequest:
    """The tenant's one call record, once the queued records are written."""
    run_until_idle()
    return LLMRequest.objects.for_tenant(tenant).get()


def sent(wire) -> str:
    """Everything the last request told the model (system prompt and messages), as text."""
    return json.dumps(wire.last.body, ensure_ascii=False).replace("\\n", "\n")


# -- citations -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "markers"),
    [
        ("Five days [1].", [1]),
        ("Lyon [2], five days [1][2].", [2, 1]),
        ("Both [1, 3] and [2; 4].", [1, 3, 2, 4]),
        ("See [2-4] and [5\u20136].", [2, 3, 4, 5, 6]),
        ("No markers at all, [a] nor [].", []),
    ],
)
def test_citation_markers_are_read_in_order_of_first_citation(text, markers):
    assert cited_markers(text) == markers


def test_an_answer_cites_the_passages_its_markers_name(tenant, wire, wire_model):
    endpoint = handbook(tenant)
    wire.script(Reply(text="From the Lyon warehouse [1]; express the next morning [1]."))

    answer = services.answer(endpoint, "Where do orders ship from?", top_k=2)

    first = answer.retrieval.results[0]
    assert first.document["external_id"] == "shipping.md"
    assert answer.outcome == "answered"
    assert [(c.marker, c.chunk_id) for c in answer.citations] == [(1, first.chunk_id)]
    assert answer.cited_documents == [first.document]
    assert answer.unmatched_markers == []
    assert "[1] Shipping\n" + SHIPPING in sent(wire)
    assert "Where do orders ship from?" in sent(wire)


def test_markers_naming_no_retrieved_passage_are_never_cited(tenant, wire, wire_model):
    endpoint = handbook(tenant)
    wire.script(Reply(text="Lyon [2], and also [7] and [0]."))

    answer = services.answer(endpoint, "Lyon warehouse delivery", top_k=2)

    assert [c.marker for c in answer.citations] == [2]
    assert answer.citations[0].chunk_id == answer.retrieval.results[1].chunk_id
    assert answer.unmatched_markers == [7, 0]


def test_the_answer_carries_usage_cost_request_and_timings(tenant, wire, wire_model):
    endpoint = handbook(tenant)
    wire.script(Reply(text="Five business days [1].", input_tokens=400, output_tokens=9))

    answer = services.answer(endpoint, "How long do refunds take?")

    request = recorded(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert answer.request_id == request.pk
    assert (answer.usage.input_tokens, answer.usage.output_tokens) == (400, 9)
    assert answer.usage.cost == usage.cost > 0
    assert (answer.provider, answer.model) == (wire_model.provider.slug, wire_model.model_id)
    assert answer.trace_id == request.trace_id == answer.retrieval.trace_id
    assert set(answer.timings) >= {"embed_ms", "retrieval_ms", "generate_ms", "total_ms"}
    body = answer.to_json()
    assert body["usage"]["cost"] == str(usage.cost)
    assert body["request_id"] == str(request.pk)
    json.dumps(body)  # JSON-safe: a step stores it as it is


def test_forced_filters_decide_which_passages_reach_the_model(tenant, wire, wire_model):
    endpoint = handbook(tenant, access_policy={"forced_filters": {"topic": "shipping"}})
    wire.script(Reply(text="The passages do not say."))

    answer = services.answer(
        endpoint, "How long do refunds take?", top_k=5, filters={"topic": "refunds"}
    )

    assert answer.outcome == "no_passages"  # refunds AND shipping: nothing
    answer = services.answer(endpoint, "How long do refunds take refunded?", top_k=5)
    assert {r.metadata["topic"] for r in answer.retrieval.results} == {"shipping"}
    assert REFUNDS not in sent(wire)
    assert len(wire.requests) == 1


def test_without_passages_no_model_is_called_and_nothing_is_charged(tenant, wire, wire_model):
    endpoint = handbook(tenant)

    answer = services.answer(endpoint, "anything", filters={"topic": "no-such-topic"})

    assert answer.outcome == "no_passages"
    assert answer.answer == "I could not find anything about this in the knowledge base."
    assert (answer.citations, answer.request_id, answer.usage.cost) == ([], None, Decimal(0))
    assert wire.requests == []
    run_until_idle()
    assert not LLMRequest.objects.for_tenant(tenant).exists()


def test_without_a_provider_answering_is_llm_not_configured_before_retrieval(tenant):
    endpoint = handbook(tenant)
    CountingEmbedder.calls.clear()

    with pytest.raises(NoProviderConfigured) as raised:
        services.answer(endpoint, "How long do refunds take?")

    assert (raised.value.status_code, raised.value.code) == (503, "llm_not_configured")
    assert CountingEmbedder.calls == []  # the question was never embedded


def test_the_endpoints_answer_config_chooses_the_model_and_options(tenant, wire, wire_model):
    careful = LLMModelConfig.objects.create(
        tenant=tenant, provider=wire_model.provider, name="Careful", model_id="m-careful"
    )
    endpoint = handbook(
        tenant,
        retrieval_config={
            "answer": {
                "model": careful.slug,
                "max_tokens": 123,
                "temperature": 0.25,
                "instructions": "Answer in French.",
            }
        },
    )
    endpoint.full_clean()

    answer = services.answer(endpoint, "Where is the warehouse?")

    body = wire.last.body
    max_tokens = body.get("max_tokens", body.get("max_completion_tokens"))
    assert (body["model"], max_tokens, body["temperature"]) == ("m-careful", 123, 0.25)
    assert "Answer in French." in sent(wire)
    assert answer.model == "m-careful"


def test_arguments_override_the_endpoints_answer_config(tenant, wire, wire_model):
    endpoint = handbook(tenant, retrieval_config={"answer": {"model": "m-configured"}})

    services.answer(endpoint, "Where is the warehouse?", model="m-argument", max_tokens=50)

    body = wire.last.body
    assert body["model"] == "m-argument"
    assert body.get("max_tokens", body.get("max_completion_tokens")) == 50


def test_an_invalid_answer_config_is_refused_when_saved_and_when_used(tenant, wire, wire_model):
    endpoint = handbook(tenant, retrieval_config={"answer": {"temprature": 0.2}})

    with pytest.raises(ValidationError, match="temprature"):
        endpoint.full_clean()
    with pytest.raises(InvalidRetrievalConfig, match="temprature"):
        services.answer(endpoint, "Where is the warehouse?")
    assert wire.requests == []


def test_the_call_is_metered_under_the_given_context(tenant, wire, wire_model, api_key):
    endpoint = handbook(tenant)
    key, _ = api_key
    context = CallContext(api_key_id=key.pk, end_user="c-9", idempotency_key="ask-1")

    services.answer(endpoint, "Where is the warehouse?", context=context)

    usage = LLMUsage.objects.get(request=recorded(tenant))
    assert (usage.api_key_id, usage.end_user) == (key.pk, "c-9")
    assert wire.last.headers["idempotency-key"] == "ask-1"


# -- streams -------------------------------------------------------------------------------------


def test_a_streamed_answer_yields_its_pieces_then_the_whole_answer(tenant, wire, wire_model):
    endpoint = handbook(tenant)
    wire.script(Reply(text="Five business days [1].", chunk_size=3))

    stream = services.stream_answer(endpoint, "How long do refunds take?")
    pieces = list(stream)

    assert len(pieces) > 2 and "".join(pieces) == "Five business days [1]."
    assert stream.answer is not None
    assert stream.answer.citations[0].document["external_id"] == "refunds.md"
    request = recorded(tenant)
    assert (request.stream, request.success, stream.answer.request_id) == (True, True, request.pk)
    assert {"first_token_ms", "generate_ms"} <= set(stream.answer.timings)


def test_a_streamed_answer_that_breaks_raises_after_the_pieces_that_arrived(
    tenant, wire, wire_model
):
    endpoint = handbook(tenant)
    wire.script(CutStream(Reply(text="a partial answer that breaks off", chunk_size=3), after=5))
    stream = services.stream_answer(endpoint, "How long do refunds take?")
    pieces = []

    with pytest.raises(Exception, match="stream") as raised:
        pieces.extend(stream)

    assert pieces and getattr(raised.value, "code", "") == "llm_bad_response"
    assert stream.answer is None
    assert recorded(tenant).error_code == "llm_bad_response"


def test_a_streamed_answer_closed_early_is_recorded_as_cancelled(tenant, wire, wire_model):
    endpoint = handbook(tenant)
    wire.script(Reply(text="an answer nobody reads to the end " * 10, chunk_size=2))
    stream = services.stream_answer(endpoint, "How long do refunds take?")

    next(iter(stream))
    stream.close()

    assert recorded(tenant).error_code == "llm_stream_cancelled"


# -- the rag.answer step -------------------------------------------------------------------------

GRAPH = {
    "start": "ask",
    "steps": {
        "ask": {
            "type": "rag.answer",
            "endpoint": "support",
            "query": "{{ context.question }}",
            "top_k": "{{ context.top_k }}",
            "max_tokens": 200,
            "next": "done",
        },
        "done": {
            "type": "complete",
            "result": {
                "answer": "{{ steps.ask.output.answer }}",
                "cited": "{{ steps.ask.output.cited_documents[0].external_id }}",
                "cost": "{{ steps.ask.output.usage.cost }}",
                "request": "{{ steps.ask.output.request_id }}",
            },
        },
    },
}


def _run(tenant, graph, **context) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="Ask")
    automation.new_version(graph).publish()
    run = engine.start(automation.slug, tenant=tenant, **context)
    run_until_idle()
    return Execution.objects.get(pk=run.pk)


def test_a_workflow_answers_with_citations_attributed_to_the_run(tenant, wire, wire_model):
    handbook(tenant)
    wire.script(Reply(text="Within five business days [1].", input_tokens=300, output_tokens=8))

    run = _run(tenant, GRAPH, question="How long do refunds take?", top_k="2")

    assert run.status == "completed", run.error
    request = recorded(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert run.result == {
        "answer": "Within five business days [1].",
        "cited": "refunds.md",
        "cost": str(usage.cost),
        "request": str(request.pk),
    }
    assert (request.execution_id, request.step_id) == (run.pk, "ask")
    assert wire.last.headers["idempotency-key"] == f"{run.pk}:ask"
    assert run.usage["calls"] == 1 and Decimal(run.usage["cost"]) == usage.cost
    assert usage.workflow == run.workflow_name


def test_the_answer_step_never_reaches_another_tenants_endpoint(tenant, other_tenant, wire):
    handbook(other_tenant)

    run = _run(tenant, GRAPH, question="refunds", top_k="2")

    assert run.status == "failed"
    assert "No RAG endpoint" in str(run.error)
    assert wire.requests == []


def test_graph_validation_names_the_bad_fields_of_a_rag_answer_step():
    graph = {
        "start": "s",
        "steps": {
            "s": {
                "type": "rag.answer",
                "endpoint": "support",
                "top_k": 0,
                "model": 3,
                "max_tokens": -1,
                "temperature": 3,
                "tools": [],
            }
        },
    }
    assert sorted(validate(graph)) == [
        ("steps.s.max_tokens", "must be a positive integer"),
        ("steps.s.model", "must be a string"),
        ("steps.s.query", "is required (a string)"),
        ("steps.s.temperature", "must be a number from 0 to 2"),
        ("steps.s.tools", "unknown field"),
        ("steps.s.top_k", "must be an integer from 1 to 100"),
    ]
