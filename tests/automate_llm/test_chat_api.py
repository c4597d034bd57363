"""``POST /api/v1/llm/chat``, against both wire servers: JSON and SSE answers, tool calls,
structured output, metering (budgets of the tenant, the API key and the end user), streams that
break or are abandoned, errors, scopes, rate limits and tenant isolation."""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import pytest
from django.core.signals import request_finished
from django.db import close_old_connections
from rest_framework.test import APIClient, APIRequestFactory

from automate_core.governance.models import AuditLog, Budget
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.testing.live_server import wait_for
from automate_core.testing.openapi import assert_events_match_schema
from automate_core.testing.runtime import run_until_idle
from automate_llm.api.chat import ChatView
from automate_llm.models import LLMModelConfig, LLMRequest, LLMUsage
from automate_llm.pricing import price_for
from automate_llm.testing import CutStream, Rejected, Reply, ToolUse
from automate_llm.testing.providers import SERVERS
from automate_llm.types import Usage

pytestmark = pytest.mark.django_db

URL = "/api/v1/llm/chat"
ASK = [{"role": "user", "content": "What is 2 + 2?"}]
LOOKUP = {
    "name": "lookup_order",
    "description": "Find an order by its id",
    "parameters": {
        "type": "object",
        "properties": {"order_id": {"type": "string"}},
        "required": ["order_id"],
    },
}
ANSWER_SCHEMA = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


def key_client(tenant: Tenant, scopes: list[str] | None = None) -> tuple[APIClient, APIKey]:
    key, raw = APIKey.issue(tenant=tenant, name="chat", scopes=scopes or [])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, key


def post(client: APIClient, **body: Any):
    return client.post(URL, {"messages": ASK, **body}, format="json")


def events(response) -> list[tuple[str, dict[str, Any]]]:
    """The (event, data) pairs of a whole SSE body."""
    raw = b"".join(response.streaming_content).decode()
    parsed = []
    for block in raw.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


def hang_up(response) -> None:
    """What a WSGI server does when the client goes away mid-stream: close the response.

    Closing fires ``request_finished``; as Django's test client does, the test's database
    connection (inside the test's transaction) is kept open meanwhile.
    """
    request_finished.disconnect(close_old_connections)
    try:
        response.close()
    finally:
        request_finished.connect(close_old_connections)


def only_request(tenant: Tenant) -> LLMRequest:
    """The tenant's one call record, once the queued records are written."""
    run_until_idle()
    (request,) = LLMRequest.objects.for_tenant(tenant)
    return request


def tenant_budget(tenant: Tenant, **limits: Any) -> Budget:
    return Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        **limits,
    )


# -- JSON answers --------------------------------------------------------------------------------


def test_chat_answers_with_text_usage_cost_and_its_record(api_client, wire, wire_model, tenant):
    wire.script(Reply(text="4", input_tokens=1000, output_tokens=200, cached_tokens=400))

    response = post(api_client)

    assert response.status_code == 200, response.content
    body = response.json()
    expected = price_for(wire.provider_type, wire_model.model_id).cost(
        Usage(input_tokens=1000, output_tokens=200, cached_tokens=400)
    )
    assert body["text"] == "4"
    assert body["finish_reason"] == "stop"
    assert body["tool_calls"] == []
    assert body["usage"] == {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cached_tokens": 400,
        "cost": str(expected),
    }
    assert (body["provider"], body["model"]) == (wire_model.provider.slug, wire_model.model_id)
    request = only_request(tenant)
    assert body["request_id"] == str(request.pk)
    assert body["trace_id"] == response["X-Trace-Id"] == request.trace_id
    assert LLMUsage.objects.get(request=request).cost == expected


def test_the_call_is_attributed_to_the_key_the_end_user_and_the_trace(wire, wire_model, tenant):
    client, key = key_client(tenant)

    response = client.post(
        URL,
        {"messages": ASK, "end_user": "customer-17"},
        format="json",
        HTTP_X_TRACE_ID="trace-from-the-caller",
    )

    assert response.json()["trace_id"] == "trace-from-the-caller"
    request = only_request(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert (usage.api_key_id, usage.end_user) == (key.pk, "customer-17")
    assert request.trace_id == "trace-from-the-caller"
    audit = AuditLog.objects.get(action="llm.call")
    assert audit.actor == f"api_key:{key.prefix}"
    assert audit.data["end_user"] == "customer-17"


def test_each_call_carries_its_own_idempotency_key_to_the_provider(api_client, wire, wire_model):
    post(api_client)
    post(api_client)

    first, second = (r.headers["idempotency-key"] for r in wire.requests)
    assert first.startswith("api-chat:") and second.startswith("api-chat:")
    assert first != second


def test_options_reach_the_provider(api_client, make_wire_provider, wire, tenant):
    row = make_wire_provider(wire, slug="main")

    response = post(api_client, provider="main", model="m-raw", max_tokens=9, temperature=0.5)

    assert response.status_code == 200, response.content
    sent = wire.last.body
    assert (sent["model"], sent["max_tokens"], sent["temperature"]) == ("m-raw", 9, 0.5)
    assert response.json()["provider"] == row.slug


def test_a_model_config_slug_selects_the_model(api_client, make_wire_provider, wire, tenant):
    row = make_wire_provider(wire)
    LLMModelConfig.objects.create(
        tenant=tenant, provider=row, name="Fast", slug="fast", model_id="m-fast"
    )

    response = post(api_client, model="fast")

    assert response.json()["model"] == "m-fast"
    assert wire.last.body["model"] == "m-fast"


def test_tool_calls_are_returned_and_their_results_go_back(api_client, wire, wire_model):
    wire.script(Reply(tool_calls=(ToolUse("lookup_order", {"order_id": "A-1"}, id="call_1"),)))

    first = post(api_client, tools=[LOOKUP]).json()

    assert first["finish_reason"] == "tool_calls"
    assert first["tool_calls"] == [
        {"id": "call_1", "name": "lookup_order", "arguments": {"order_id": "A-1"}}
    ]
    assert len(wire.last.body["tools"]) == 1
    conversation = [
        *ASK,
        {"role": "assistant", "content": None, "tool_calls": first["tool_calls"]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"status": "shipped"}'},
    ]
    wire.script(Reply(text="It has shipped."))

    second = api_client.post(URL, {"messages": conversation, "tools": [LOOKUP]}, format="json")

    assert second.json()["text"] == "It has shipped."
    assert "shipped" in json.dumps(wire.last.body["messages"])
    assert "call_1" in json.dumps(wire.last.body["messages"])


def test_json_schema_answers_with_the_validated_value(api_client, wire, wire_model, tenant):
    wire.script(Reply(output={"answer": 4}))

    body = post(api_client, json_schema=ANSWER_SCHEMA).json()

    assert body["value"] == {"answer": 4}
    assert body["repaired"] is False
    assert body["request_ids"] == [str(only_request(tenant).pk)]


def test_json_schema_repairs_once_and_reports_both_records(api_client, wire, wire_model, tenant):
    wire.script(Reply(output={"answer": "four"}), Reply(output={"answer": 4}))

    body = post(api_client, json_schema=ANSWER_SCHEMA).json()

    assert (body["value"], body["repaired"]) == ({"answer": 4}, True)
    assert len(body["request_ids"]) == 2
    run_until_idle()
    assert set(body["request_ids"]) == {
        str(pk) for pk in LLMRequest.objects.for_tenant(tenant).values_list("pk", flat=True)
    }


def test_an_answer_that_never_matches_the_schema_is_422(api_client, wire, wire_model):
    wire.script(Reply(output={"answer": "four"}), Reply(output={"answer": "still four"}))

    response = post(api_client, json_schema=ANSWER_SCHEMA)

    assert response.status_code == 422
    assert response.json()["code"] == "llm_structured_output_invalid"


# -- streams -------------------------------------------------------------------------------------


def test_a_stream_sends_text_events_then_done_with_usage(api_client, wire, wire_model, tenant):
    wire.script(Reply(text="two plus two is four", input_tokens=50, output_tokens=6))

    response = post(api_client, stream=True)

    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"
    received = events(response)
    assert_events_match_schema(received, "llm_chat")
    names = [name for name, _ in received]
    assert names[-1] == "done" and set(names[:-1]) == {"text"} and len(names) > 2
    assert "".join(data["text"] for name, data in received if name == "text") == (
        "two plus two is four"
    )
    done = received[-1][1]
    request = only_request(tenant)
    assert done["request_id"] == str(request.pk)
    assert done["text"] == "two plus two is four"
    assert (done["usage"]["input_tokens"], done["usage"]["output_tokens"]) == (50, 6)
    assert Decimal(done["usage"]["cost"]) == LLMUsage.objects.get(request=request).cost
    assert done["trace_id"] == response["X-Trace-Id"]
    assert (request.stream, request.success) == (True, True)


def test_a_stream_sends_tool_call_events(api_client, wire, wire_model):
    wire.script(Reply(text="", tool_calls=(ToolUse("lookup_order", {"order_id": "B-2"}),)))

    received = events(post(api_client, stream=True, tools=[LOOKUP]))
    assert_events_match_schema(received, "llm_chat")

    calls = [data for name, data in received if name == "tool_call"]
    assert [(c["name"], c["arguments"]) for c in calls] == [("lookup_order", {"order_id": "B-2"})]
    done = received[-1][1]
    assert (received[-1][0], done["finish_reason"]) == ("done", "tool_calls")
    assert done["tool_calls"] == calls


def test_a_stream_cut_midway_ends_with_an_error_event_and_is_charged(
    api_client, wire, wire_model, tenant
):
    budget = tenant_budget(tenant, limit_tokens=1_000_000)
    wire.script(CutStream(Reply(text="a partial answer that breaks off", chunk_size=3), after=5))

    received = events(post(api_client, stream=True))

    assert_events_match_schema(received, "llm_chat")
    assert [name for name, _ in received][:1] == ["text"]
    name, error = received[-1]
    assert name == "error"
    assert error["code"] == "llm_bad_response"
    request = only_request(tenant)
    usage = LLMUsage.objects.get(request=request)
    assert error["details"]["request_id"] == str(request.pk)
    assert error["details"]["usage"]["output_tokens"] == usage.output_tokens > 0
    assert Decimal(error["details"]["usage"]["cost"]) == usage.cost
    assert (request.success, request.error_code) == (False, "llm_bad_response")
    budget.refresh_from_db()
    assert budget.reserved_tokens == 0
    assert budget.spent_tokens == usage.input_tokens + usage.output_tokens


def test_a_stream_that_fails_before_its_first_chunk_is_a_json_error(
    api_client, wire, wire_model, tenant
):
    wire.script(Rejected(400, "Unknown parameter."))

    response = post(api_client, stream=True, HTTP_ACCEPT="text/event-stream")

    assert response.status_code == 502
    assert response["Content-Type"] == "application/json"
    assert response.json()["code"] == "llm_request_rejected"
    assert only_request(tenant).error_code == "llm_request_rejected"


def test_a_stream_the_client_abandons_is_recorded_as_cancelled_and_settled(
    api_key, wire, wire_model, tenant
):
    budget = tenant_budget(tenant, limit_tokens=1_000_000)
    wire.script(Reply(text="an answer nobody reads to the end " * 20, chunk_size=2))
    request = APIRequestFactory().post(
        URL,
        {"messages": ASK, "stream": True},
        format="json",
        HTTP_AUTHORIZATION=f"Bearer {api_key[1]}",
    )

    response = ChatView.as_view()(request)
    first = next(iter(response.streaming_content))
    hang_up(response)

    assert first.startswith(b"event: text")
    record = only_request(tenant)
    assert (record.success, record.error_code) == (False, "llm_stream_cancelled")
    budget.refresh_from_db()
    assert budget.reserved_tokens == 0
    assert budget.spent_tokens > 0


@pytest.mark.django_db(transaction=True)
def test_a_client_disconnect_under_uvicorn_closes_the_stream(wire, wire_model, tenant, asgi_url):
    _, raw = APIKey.issue(tenant=tenant, name="sse")
    budget = tenant_budget(tenant, limit_tokens=10_000_000)
    long_answer = "streamed slowly enough to be abandoned " * 500
    wire.script(Reply(text=long_answer, chunk_size=2))
    httpx = pytest.importorskip("httpx")

    with (
        httpx.Client(timeout=30) as client,
        client.stream(
            "POST",
            f"{asgi_url}{URL}",
            json={"messages": ASK, "stream": True},
            headers={"Authorization": f"Bearer {raw}"},
        ) as response,
    ):
        assert response.headers["content-type"] == "text/event-stream"
        for line in response.iter_lines():
            if line.startswith("data:"):
                break

    request = wait_for(lambda: LLMRequest.objects.for_tenant(tenant).first())
    assert (request.success, request.error_code) == (False, "llm_stream_cancelled")
    usage = LLMUsage.objects.get(request=request)
    assert usage.output_tokens > 0
    assert len(request.response["text"]) < len(long_answer)
    budget.refresh_from_db()
    assert budget.reserved_tokens == 0
    assert budget.spent_tokens == usage.input_tokens + usage.output_tokens


# -- budgets -------------------------------------------------------------------------------------


def test_an_exhausted_tenant_budget_is_402_and_nothing_is_sent(api_client, wire, wire_model):
    tenant_budget(wire_model.tenant, limit_tokens=10)

    response = post(api_client)

    assert response.status_code == 402
    body = response.json()
    assert body["code"] == "budget_exceeded"
    assert body["details"]["scope_type"] == "tenant"
    assert wire.requests == []


def test_a_stream_over_budget_is_refused_before_any_event(api_client, wire, wire_model):
    tenant_budget(wire_model.tenant, limit_tokens=10)

    response = post(api_client, stream=True)

    assert response.status_code == 402
    assert response["Content-Type"] == "application/json"
    assert wire.requests == []


def test_the_api_keys_budget_applies_to_its_calls_only(wire, wire_model, tenant):
    limited, key = key_client(tenant)
    other, _ = key_client(tenant)
    Budget.objects.create(
        tenant=tenant,
        scope_type="api_key",
        scope_id=str(key.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )

    refused = post(limited)

    assert refused.status_code == 402
    assert refused.json()["details"]["scope_type"] == "api_key"
    assert post(other).status_code == 200
    assert len(wire.requests) == 1


def test_the_end_users_budget_applies_to_their_calls_only(api_client, wire, wire_model, tenant):
    Budget.objects.create(
        tenant=tenant,
        scope_type="end_user",
        scope_id="customer-17",
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )

    refused = post(api_client, end_user="customer-17")

    assert refused.status_code == 402
    assert refused.json()["details"]["scope_id"] == "customer-17"
    assert post(api_client, end_user="customer-18").status_code == 200
    assert len(wire.requests) == 1


def test_a_call_is_charged_to_every_budget_of_its_scopes(api_client, wire, wire_model, tenant):
    key = APIKey.objects.get(tenant=tenant)
    scopes = [("tenant", str(tenant.pk)), ("api_key", str(key.pk)), ("end_user", "c-1")]
    budgets = [
        Budget.objects.create(
            tenant=tenant,
            scope_type=scope_type,
            scope_id=scope_id,
            period=Budget.Period.TOTAL,
            limit_tokens=1_000_000,
        )
        for scope_type, scope_id in scopes
    ]
    wire.script(Reply(input_tokens=30, output_tokens=5))

    assert post(api_client, end_user="c-1").status_code == 200

    for budget in budgets:
        budget.refresh_from_db()
        assert (budget.spent_tokens, budget.reserved_tokens) == (35, 0), budget.scope_type


# -- errors --------------------------------------------------------------------------------------


def test_without_a_provider_the_answer_is_503_llm_not_configured(api_client):
    response = post(api_client)

    assert response.status_code == 503
    body = response.json()
    assert body["code"] == "llm_not_configured"
    assert body["trace_id"] == response["X-Trace-Id"]


def test_an_unknown_provider_slug_is_404_naming_the_choices(api_client, wire, wire_model):
    response = post(api_client, provider="nope")

    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "llm_provider_not_found"
    assert body["details"]["provider"] == "nope"
    assert body["details"]["choices"] == [wire_model.provider.slug]
    assert wire.requests == []


def test_a_provider_failure_is_a_normalized_502(api_client, wire, wire_model):
    wire.script(Rejected(400, "Unknown parameter."))

    response = post(api_client)

    assert response.status_code == 502
    assert response.json()["code"] == "llm_request_rejected"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": None}, "messages"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "messages"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"temperature": 3}, "temperature"),
        ({"tools": [{"name": "not a name!"}]}, "tools"),
        ({"json_schema": "an object please"}, "json_schema"),
        ({"json_schema": ANSWER_SCHEMA, "stream": True}, "stream"),
        ({"json_schema": ANSWER_SCHEMA, "tools": [LOOKUP]}, "tools"),
        ({"end_user": "x" * 201}, "end_user"),
    ],
)
def test_an_invalid_body_is_a_400_naming_the_field(api_client, body, field):
    response = api_client.post(URL, {"messages": ASK, **body}, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert field in response.json()["details"]


def test_an_invalid_json_schema_is_a_400_before_any_call(api_client, wire, wire_model):
    response = post(api_client, json_schema={"type": "no-such-type"})

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_input"
    assert wire.requests == []


def test_a_body_that_is_not_json_is_refused(api_client):
    response = api_client.post(URL, "messages=hi", content_type="application/x-www-form-urlencoded")

    assert response.status_code == 415


# -- access --------------------------------------------------------------------------------------


def test_a_key_without_the_chat_scope_is_refused_and_nothing_is_sent(wire, wire_model, tenant):
    client, _ = key_client(tenant, scopes=["prompts:read", "llm:usage"])

    response = post(client)

    assert response.status_code == 403
    assert "llm:chat" in response.json()["message"]
    assert wire.requests == []


@pytest.mark.parametrize("scope", ["llm:chat", "llm:*"])
def test_a_key_scoped_for_chat_may_chat(wire, wire_model, tenant, scope):
    client, _ = key_client(tenant, scopes=[scope])

    assert post(client).status_code == 200


def test_anonymous_callers_get_401(wire, wire_model):
    assert post(APIClient()).status_code == 401
    assert wire.requests == []


def test_a_logged_in_member_may_chat_attributed_to_no_key(
    django_user_model, wire, wire_model, tenant
):
    user = django_user_model.objects.create_user("ops", password="x")
    TenantMembership.objects.create(tenant=tenant, user=user)
    client = APIClient()
    client.force_login(user)

    assert post(client).status_code == 200
    usage = LLMUsage.objects.get(request=only_request(tenant))
    assert usage.api_key_id is None


def test_calls_are_rate_limited_per_key(settings, wire, wire_model, tenant):
    settings.AUTOMATE = {**settings.AUTOMATE, "RATE_LIMITS": {"llm.chat": "2/min"}}
    client, _ = key_client(tenant)
    other, _ = key_client(tenant)

    answers = [post(client) for _ in range(3)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[0]["RateLimit-Limit"] == "2"
    assert answers[2].json()["code"] == "throttled"
    assert int(answers[2]["Retry-After"]) > 0
    assert len(wire.requests) == 2
    assert post(other).status_code == 200


def test_a_key_never_reaches_another_tenants_provider(make_wire_provider, other_tenant, tenant):
    """Both tenants have a provider ``shared``, on servers of their own; B also has model
    configs ``fast`` and ``b-only``. Whatever A names (B's config slugs are mere model ids on
    A's provider), only A's server is called and every record is A's."""
    with SERVERS["openai"]() as mine, SERVERS["openai"]() as theirs:
        make_wire_provider(mine, slug="shared", is_default=True)
        their_row = make_wire_provider(theirs, slug="shared", is_default=True, tenant_=other_tenant)
        LLMModelConfig.objects.create(
            tenant=other_tenant, provider=their_row, name="Fast", slug="fast", model_id="m-b"
        )
        LLMModelConfig.objects.create(
            tenant=other_tenant, provider=their_row, name="B only", slug="b-only", model_id="m-b"
        )
        client, _ = key_client(tenant)

        answers = [
            post(client, provider="shared", model="m-a"),
            post(client, model="fast", provider="shared"),
            post(client, model="b-only", provider="shared"),
            post(client, provider="shared", model="m-a", HTTP_X_TENANT=other_tenant.slug),
        ]

        assert [a.status_code for a in answers] == [200] * 4
        assert theirs.requests == []
        assert len(mine.requests) == 4
        assert [r.body["model"] for r in mine.requests] == ["m-a", "fast", "b-only", "m-a"]
        run_until_idle()
        assert not LLMRequest.objects.for_tenant(other_tenant).exists()
        assert LLMRequest.objects.for_tenant(tenant).count() == 4


def test_schema_documents_the_chat_endpoint(client):
    schema = client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/llm/chat"]["post"]
    assert set(operation["responses"]["200"]["content"]) == {
        "application/json",
        "text/event-stream",
    }
    assert {"402", "503", "429"} <= set(operation["responses"])
    request = schema["components"]["schemas"]["ChatRequestRequest"]
    assert {"messages", "stream", "json_schema", "end_user", "tools"} <= set(request["properties"])
    answer = schema["components"]["schemas"]["ChatAnswer"]
    assert {"text", "tool_calls", "finish_reason", "usage", "request_id", "trace_id"} <= set(
        answer["properties"]
    )
