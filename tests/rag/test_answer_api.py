"""``POST /api/v1/rag/<endpoint>/answer``: JSON and SSE answers with citations through the LLM
gateway, key scopes, budgets, rate limits and tenants, against the local wire servers."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.management import call_command
from rest_framework.test import APIClient

from automate_core.governance.models import Budget
from automate_core.tenancy.models import APIKey
from automate_core.testing.live_server import wait_for
from automate_core.testing.openapi import assert_events_match_schema
from automate_core.testing.runtime import run_until_idle
from automate_llm.models import LLMModelConfig, LLMRequest, LLMUsage
from automate_llm.testing import AnthropicWire, CutStream, OpenAIWire, Reply
from automate_llm.testing.providers import MODELS
from rag import services

from .conftest import configure_rag
from .factories import HANDBOOK, handbook, make_endpoint, make_source, push
from .test_answer import recorded

pytestmark = pytest.mark.django_db

URL = "/api/v1/rag/support/answer"
QUESTION = {"query": "How long do refunds take?", "top_k": 2}


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


def key_client(tenant, scopes: list[str] | None = None) -> tuple[APIClient, APIKey]:
    scopes = ["rag:support"] if scopes is None else scopes
    key, raw = APIKey.issue(tenant=tenant, name="answers", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, key


def events(response) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a whole SSE body."""
    raw = b"".join(response.streaming_content).decode()
    parsed = []
    for block in raw.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def budget(tenant, scope_type: str, scope_id: str, **limits: Any) -> Budget:
    return Budget.objects.create(
        tenant=tenant,
        scope_type=scope_type,
        scope_id=scope_id,
        period=Budget.Period.TOTAL,
        **limits,
    )


# -- JSON ----------------------------------------------------------------------------------------


def test_a_json_answer_has_citations_usage_and_its_record(tenant, wire, wire_model):
    handbook(tenant)
    client, key = key_client(tenant)
    wire.script(Reply(text="Five business days [1].", input_tokens=500, output_tokens=6))

    response = client.post(URL, {**QUESTION, "end_user": "customer-17"}, format="json")

    assert response.status_code == 200, response.content
    body = response.json()
    request = recorded(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert body["answer"] == "Five business days [1]."
    assert body["outcome"] == "answered"
    assert body["citations"][0]["marker"] == 1
    assert body["citations"][0]["chunk_id"] == body["results"][0]["chunk_id"]
    assert body["cited_documents"] == [body["results"][0]["document"]]
    assert body["results"][0]["document"]["external_id"] == "refunds.md"
    assert body["usage"] == {
        "input_tokens": 500,
        "output_tokens": 6,
        "cached_tokens": 0,
        "cost": str(usage.cost),
    }
    assert body["request_id"] == str(request.pk)
    assert body["index_version"]["number"] == 1
    assert body["trace_id"] == response["X-Trace-Id"] == request.trace_id
    assert (usage.api_key_id, usage.end_user) == (key.pk, "customer-17")
    assert wire.last.headers["idempotency-key"].startswith("api-rag-answer:")


def test_without_a_provider_the_answer_is_503_llm_not_configured(tenant):
    handbook(tenant)
    client, _ = key_client(tenant)

    for stream in (False, True):
        response = client.post(URL, {**QUESTION, "stream": stream}, format="json")
        assert response.status_code == 503, stream
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "llm_not_configured"


def test_without_matching_passages_the_answer_says_so_and_calls_no_model(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant)

    response = client.post(URL, {**QUESTION, "filters": {"topic": "no-such-topic"}}, format="json")

    body = response.json()
    assert response.status_code == 200
    assert (body["outcome"], body["results"], body["citations"]) == ("no_passages", [], [])
    assert body["answer"] == "I could not find anything about this in the knowledge base."
    assert body["request_id"] is None and Decimal(body["usage"]["cost"]) == 0
    assert wire.requests == []


def test_the_access_policy_forces_its_filters_on_answers(tenant, wire, wire_model):
    handbook(tenant, access_policy={"forced_filters": {"topic": "shipping"}})
    client, _ = key_client(tenant)

    for filters in ({}, {"topic": "refunds"}, {"topic": {"$ne": "shipping"}}):
        response = client.post(
            URL,
            {"query": "refunds refunded payment", "top_k": 10, "filters": filters},
            format="json",
        )
        assert response.status_code == 200, response.content
        topics = {r["metadata"]["topic"] for r in response.json()["results"]}
        assert topics <= {"shipping"}, filters
    assert all("refunded within" not in request.raw.decode() for request in wire.requests)


def test_a_key_scoped_to_another_endpoint_is_refused_and_nothing_is_sent(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant, ["rag:faq"])

    response = client.post(URL, QUESTION, format="json")

    assert response.status_code == 403
    assert wire.requests == []


def test_an_unknown_endpoint_is_a_404(tenant, wire, wire_model):
    client, _ = key_client(tenant, [])
    response = client.post("/api/v1/rag/nope/answer", QUESTION, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "rag_endpoint_not_found"


def test_the_body_cannot_choose_the_model(tenant, wire, wire_model):
    """The model is the endpoint's: a widget's public key cannot pick an expensive one."""
    handbook(tenant)
    client, _ = key_client(tenant)

    response = client.post(
        URL, {**QUESTION, "model": "gpt-5-pro", "max_tokens": 100000}, format="json"
    )

    assert response.status_code == 200
    assert wire.last.body["model"] == wire_model.model_id


def test_answers_and_queries_share_the_keys_rate_limit(tenant, settings, wire, wire_model):
    configure_rag(settings, QUERY_RATE_LIMIT="2/min")
    handbook(tenant)
    client, _ = key_client(tenant)

    first = client.post(URL, QUESTION, format="json")
    second = client.post("/api/v1/rag/support/query", QUESTION, format="json")
    third = client.post(URL, QUESTION, format="json")

    assert [first.status_code, second.status_code, third.status_code] == [200, 200, 429]
    assert third.json()["code"] == "throttled"
    assert len(wire.requests) == 1


# -- budgets -------------------------------------------------------------------------------------


def test_an_exhausted_key_budget_is_402_and_nothing_is_sent(tenant, wire, wire_model):
    handbook(tenant)
    limited, key = key_client(tenant)
    other, _ = key_client(tenant)
    budget(tenant, "api_key", str(key.pk), limit_tokens=10)

    refused = limited.post(URL, QUESTION, format="json")
    streamed = limited.post(URL, {**QUESTION, "stream": True}, format="json")

    for response in (refused, streamed):
        assert response.status_code == 402
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "budget_exceeded"
        assert response.json()["details"]["scope_type"] == "api_key"
    assert wire.requests == []
    assert other.post(URL, QUESTION, format="json").status_code == 200


def test_the_end_users_budget_applies_to_their_answers(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant)
    budget(tenant, "end_user", "customer-17", limit_tokens=10)

    refused = client.post(URL, {**QUESTION, "end_user": "customer-17"}, format="json")

    assert refused.status_code == 402
    assert refused.json()["details"]["scope_id"] == "customer-17"
    assert client.post(URL, {**QUESTION, "end_user": "c-18"}, format="json").status_code == 200
    assert len(wire.requests) == 1


# -- SSE -----------------------------------------------------------------------------------------


def test_a_stream_sends_text_events_then_done_with_citations(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant)
    wire.script(Reply(text="Refunds take five business days [1].", chunk_size=4))

    response = client.post(URL, {**QUESTION, "stream": True}, format="json")

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    received = events(response)
    assert_events_match_schema(received, "rag_answer")
    names = [name for name, _ in received]
    assert names[-1] == "done" and set(names[:-1]) == {"text"} and len(names) > 3
    text = "".join(data["text"] for name, data in received if name == "text")
    done = received[-1][1]
    request = recorded(tenant)
    assert text == done["answer"] == "Refunds take five business days [1]."
    assert done["citations"][0]["document"]["external_id"] == "refunds.md"
    assert done["request_id"] == str(request.pk) and request.stream
    assert Decimal(done["usage"]["cost"]) == LLMUsage.objects.get(request=request).cost
    assert done["trace_id"] == response["X-Trace-Id"]


def test_a_stream_cut_midway_ends_with_an_error_event_and_is_charged(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant)
    wire.script(CutStream(Reply(text="a partial answer that breaks off", chunk_size=3), after=5))

    received = events(client.post(URL, {**QUESTION, "stream": True}, format="json"))

    assert_events_match_schema(received, "rag_answer")
    assert received[0][0] == "text"
    name, error = received[-1]
    request = recorded(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert (name, error["code"]) == ("error", "llm_bad_response")
    assert error["details"]["request_id"] == str(request.pk)
    assert Decimal(error["details"]["usage"]["cost"]) == usage.cost
    assert usage.output_tokens > 0


def test_a_stream_without_passages_sends_the_message_and_done(tenant, wire, wire_model):
    handbook(tenant)
    client, _ = key_client(tenant)

    received = events(
        client.post(URL, {**QUESTION, "stream": True, "filters": {"topic": "none"}}, format="json")
    )

    assert [name for name, _ in received] == ["text", "done"]
    assert received[1][1]["outcome"] == "no_passages"
    assert received[0][1]["text"] == received[1][1]["answer"]
    assert wire.requests == []


@pytest.mark.django_db(transaction=True)
def test_a_client_disconnect_under_uvicorn_closes_the_model_stream(
    tenant, wire, wire_model, asgi_url
):
    handbook(tenant)
    _, raw = APIKey.issue(tenant=tenant, name="sse", scopes=["rag:support"])
    long_answer = "streamed slowly enough to be abandoned [1] " * 400
    wire.script(Reply(text=long_answer, chunk_size=2))
    httpx = pytest.importorskip("httpx")

    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{asgi_url}{URL}",
            json={**QUESTION, "stream": True},
            headers={"Authorization": f"Bearer {raw}"},
        ) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line.startswith("data:"):
                break

    request = wait_for(lambda: LLMRequest.objects.for_tenant(tenant).first())
    assert (request.success, request.error_code) == (False, "llm_stream_cancelled")
    assert len(request.response["text"]) < len(long_answer)


# -- tenants -------------------------------------------------------------------------------------


def test_a_key_of_one_tenant_never_retrieves_or_calls_with_anothers(
    tenant, other_tenant, make_wire_provider
):
    """Both tenants have endpoint ``support`` and a default provider, each on its own server."""
    with OpenAIWire() as mine, AnthropicWire() as theirs:
        for owner, server in ((tenant, mine), (other_tenant, theirs)):
            source = make_source(owner)
            for name, text in HANDBOOK.items():
                push(source, name, text.replace("Lyon", f"{owner.slug.title()}ville"))
            endpoint = make_endpoint(owner, source)
            assert services.reindex(endpoint).status == "live"
            provider = make_wire_provider(server, is_default=True, tenant_=owner)
            LLMModelConfig.objects.create(
                tenant=owner,
                provider=provider,
                name="Default",
                model_id=MODELS[server.provider_type],
                is_default=True,
            )
        client, _ = key_client(tenant)
        theirs_before = LLMRequest.objects.for_tenant(other_tenant).count()

        response = client.post(
            URL,
            {"query": "Where is the warehouse?", "top_k": 10},
            format="json",
            HTTP_X_TENANT=other_tenant.slug,
        )

        assert response.status_code == 200, response.content
        assert theirs.requests == [] and len(mine.requests) == 1
        prompt = mine.last.raw.decode()
        assert f"{tenant.slug.title()}ville" in prompt
        assert f"{other_tenant.slug.title()}ville" not in prompt
        assert other_tenant.slug not in response.content.decode().lower()
    run_until_idle()
    assert LLMRequest.objects.for_tenant(other_tenant).count() == theirs_before
    assert LLMRequest.objects.for_tenant(tenant).count() == 1


# -- schema --------------------------------------------------------------------------------------


def test_the_schema_documents_the_answer_endpoint(tmp_path):
    target = tmp_path / "schema.json"
    call_command("spectacular", "--fail-on-warn", "--format", "openapi-json", "--file", target)
    operation = json.loads(target.read_text())["paths"]["/api/v1/rag/{endpoint}/answer"]["post"]
    assert operation["operationId"] == "rag_answer"
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "text/event-stream",
    }
    assert {"402", "503"} <= set(operation["responses"])
