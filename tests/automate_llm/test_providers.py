"""Contract of the built-in providers, each test run against both wire servers (``wire``).

The official SDKs talk real HTTP to the local servers; the tests assert what reached the
server as much as what came back.
"""

from __future__ import annotations

import json
import socket
from typing import Any

import pytest

from automate_llm.errors import (
    ProviderBadResponse,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from automate_llm.models import LLMProvider as ProviderRow
from automate_llm.providers.base import LLMProvider
from automate_llm.testing import (
    CutStream,
    Malformed,
    RateLimited,
    Rejected,
    Reply,
    ServerError,
    ToolUse,
    WireServer,
)
from automate_llm.testing.providers import MODELS, WIRE_API_KEY
from automate_llm.types import ChatChunk, ChatMessage, ChatOptions, ChatResult, ToolCall, ToolSpec

HELLO = [ChatMessage(role="user", content="Say hello.")]
WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather in a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}},
        "required": ["city"],
    },
)


@pytest.fixture
def provider(wire_provider: ProviderRow) -> LLMProvider:
    client: LLMProvider = wire_provider.get_client()
    return client


def options(wire: WireServer, **values: Any) -> ChatOptions:
    return ChatOptions(model=MODELS[wire.provider_type], max_tokens=64, **values)


def collect(provider: LLMProvider, wire: WireServer, **values: Any) -> list[ChatChunk]:
    return list(provider.stream(HELLO, options(wire, **values)))


def joined(chunks: list[ChatChunk]) -> str:
    return "".join(chunk.text for chunk in chunks)


# -- plain answers -----------------------------------------------------------------------------


def test_chat_returns_the_text_finish_reason_usage_and_request_id(provider, wire) -> None:
    wire.script(Reply(text="Hello, world.", input_tokens=30, output_tokens=4, cached_tokens=10))

    result = provider.chat(HELLO, options(wire))

    assert result == ChatResult(
        text="Hello, world.",
        finish_reason="stop",
        usage={"input_tokens": 30, "output_tokens": 4, "cached_tokens": 10},
        model=MODELS[wire.provider_type],
        provider=wire.provider_type,
        request_id=wire.last.request_id,
    )


def test_chat_sends_the_resolved_api_key_and_the_model(provider, wire) -> None:
    provider.chat(HELLO, options(wire))

    assert wire.api_key_of(wire.last) == WIRE_API_KEY
    assert wire.last.body["model"] == MODELS[wire.provider_type]


def test_idempotency_key_is_sent_as_a_header(provider, wire) -> None:
    provider.chat(HELLO, options(wire, idempotency_key="exec-1:step-2"))

    assert wire.last.headers["idempotency-key"] == "exec-1:step-2"


def test_no_idempotency_header_without_a_key(provider, wire) -> None:
    provider.chat(HELLO, options(wire))

    assert "idempotency-key" not in wire.last.headers


def test_max_tokens_temperature_stop_and_extra_params_reach_the_api(provider, wire) -> None:
    provider.chat(HELLO, options(wire, temperature=0.5, stop=["END"], extra={"top_p": 0.9}))

    body = wire.last.body
    assert (body["temperature"], body["top_p"]) == (0.5, 0.9)
    if wire.provider_type == "openai":
        assert (body["max_tokens"], body["stop"]) == (64, ["END"])
    else:
        assert (body["max_tokens"], body["stop_sequences"]) == (64, ["END"])


def test_system_prompt_goes_where_the_api_wants_it(provider, wire) -> None:
    messages = [
        ChatMessage(role="system", content="Be brief."),
        ChatMessage(role="user", content="Hi"),
    ]

    provider.chat(messages, options(wire))

    body = wire.last.body
    if wire.provider_type == "openai":
        assert body["messages"][0] == {"role": "system", "content": "Be brief."}
    else:
        assert body["system"] == "Be brief."
        assert [turn["role"] for turn in body["messages"]] == ["user"]


def test_the_sdk_does_not_retry_by_itself(provider, wire) -> None:
    wire.script(ServerError(500), Reply())

    with pytest.raises(ProviderUnavailable):
        provider.chat(HELLO, options(wire))

    assert len(wire.requests) == 1
    assert wire.last.headers["x-stainless-retry-count"] == "0"


# -- errors ------------------------------------------------------------------------------------


def test_429_is_rate_limited_with_the_retry_after_seconds(provider, wire) -> None:
    wire.script(RateLimited(retry_after="3"))

    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.retry_after == 3.0
    assert caught.value.retryable
    assert caught.value.details["provider_request_id"] == wire.last.request_id


def test_retry_after_ms_wins_over_retry_after(provider, wire) -> None:
    wire.script(RateLimited(retry_after="3", retry_after_ms="250"))

    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.retry_after == 0.25


def test_retry_after_as_an_http_date_is_read_as_seconds_from_now(provider, wire) -> None:
    wire.script(RateLimited(retry_after="Wed, 21 Oct 2015 07:28:00 GMT"))

    with pytest.raises(ProviderRateLimited) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.retry_after == 0.0  # a date in the past: retry now


@pytest.mark.parametrize("status", [500, 503, 529])
def test_5xx_is_unavailable(provider, wire, status) -> None:
    wire.script(ServerError(status, retry_after="2"))

    with pytest.raises(ProviderUnavailable) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.retryable
    assert caught.value.retry_after == 2.0
    assert caught.value.details["status"] == status


@pytest.mark.parametrize("status", [400, 404, 422])
def test_other_4xx_is_rejected_and_not_retryable(provider, wire, status) -> None:
    wire.script(Rejected(status, "model does not exist"))

    with pytest.raises(ProviderRejected, match="model does not exist") as caught:
        provider.chat(HELLO, options(wire))

    assert not caught.value.retryable
    assert caught.value.details["status"] == status


def test_a_wrong_api_key_is_rejected(provider, wire) -> None:
    wire.api_key = "another-key"

    with pytest.raises(ProviderRejected) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.details["status"] == 401


def test_a_conversation_the_api_refuses_is_rejected(provider, wire) -> None:
    orphan = [*HELLO, ChatMessage(role="tool", tool_call_id="call_unknown", content="42")]

    with pytest.raises(ProviderRejected, match="400"):
        provider.chat(orphan, options(wire))


def test_malformed_json_is_a_bad_response(provider, wire) -> None:
    wire.script(Malformed())

    with pytest.raises(ProviderBadResponse) as caught:
        provider.chat(HELLO, options(wire))

    assert caught.value.retryable


def test_valid_json_of_the_wrong_shape_is_a_bad_response(provider, wire) -> None:
    wire.script(Malformed(body=b'{"unexpected": true}'))

    with pytest.raises(ProviderBadResponse):
        provider.chat(HELLO, options(wire))


def test_a_body_cut_mid_way_is_a_bad_response(provider, wire) -> None:
    wire.script(CutStream())

    with pytest.raises(ProviderBadResponse, match="dropped the connection"):
        provider.chat(HELLO, options(wire))


def test_a_slow_answer_times_out_as_unavailable(provider, wire) -> None:
    wire.script(Reply(delay=1.0))

    with pytest.raises(ProviderUnavailable, match="did not answer in time"):
        provider.chat(HELLO, options(wire, timeout=0.2))


def test_a_refused_connection_is_unavailable(make_wire_provider, wire) -> None:
    with socket.socket() as probe:  # a port nothing listens on once the probe is closed
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    row = make_wire_provider(wire)
    row.config["base_url"] = row.config["base_url"].replace(str(wire.port), str(closed_port))
    row.save()

    with pytest.raises(ProviderUnavailable, match="could not reach"):
        row.get_client().chat(HELLO, options(wire))


# -- tool calls --------------------------------------------------------------------------------


def test_tool_calls_come_back_parsed_with_finish_reason_tool_calls(provider, wire) -> None:
    wire.script(Reply(text="", tool_calls=(ToolUse("get_weather", {"city": "Paris"}, "call_1"),)))

    result = provider.chat(HELLO, options(wire, tools=[WEATHER]))

    assert result.tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})
    ]
    assert result.finish_reason == "tool_calls"


def test_tools_are_declared_in_the_dialect_of_the_api(provider, wire) -> None:
    provider.chat(HELLO, options(wire, tools=[WEATHER], tool_choice="get_weather"))

    body = wire.last.body
    if wire.provider_type == "openai":
        assert body["tools"] == [
            {
                "type": "function",
                "function": {
                    "name": "get_weather",
                    "description": "Current weather in a city.",
                    "parameters": WEATHER.parameters,
                },
            }
        ]
        assert body["tool_choice"] == {"type": "function", "function": {"name": "get_weather"}}
    else:
        assert body["tools"] == [
            {
                "name": "get_weather",
                "description": "Current weather in a city.",
                "input_schema": WEATHER.parameters,
            }
        ]
        assert body["tool_choice"] == {"type": "tool", "name": "get_weather"}


def test_tool_calls_and_results_round_trip_in_the_conversation(provider, wire) -> None:
    calls = [
        ToolCall(id="call_a", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_b", name="get_weather", arguments={"city": "Oslo"}),
    ]
    conversation = [
        ChatMessage(role="user", content="Weather in Paris and Oslo?"),
        ChatMessage(role="assistant", content="", tool_calls=calls),
        ChatMessage(role="tool", tool_call_id="call_a", content="18C"),
        ChatMessage(role="tool", tool_call_id="call_b", content="4C"),
    ]
    wire.script(Reply(text="Paris 18C, Oslo 4C."))

    result = provider.chat(conversation, options(wire, tools=[WEATHER]))

    assert result.text == "Paris 18C, Oslo 4C."  # the server accepted the conversation
    sent = wire.last.body["messages"]
    if wire.provider_type == "openai":
        assert sent[1]["tool_calls"][1]["function"] == {
            "name": "get_weather",
            "arguments": json.dumps({"city": "Oslo"}),
        }
        assert sent[2:] == [
            {"role": "tool", "tool_call_id": "call_a", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_b", "content": "4C"},
        ]
    else:
        assert sent[1]["content"][1] == {
            "type": "tool_use",
            "id": "call_b",
            "name": "get_weather",
            "input": {"city": "Oslo"},
        }
        assert sent[2] == {
            "role": "user",
            "content": [
                {"type": "tool_result", "tool_use_id": "call_a", "content": "18C"},
                {"type": "tool_result", "tool_use_id": "call_b", "content": "4C"},
            ],
        }


def test_streamed_tool_calls_arrive_whole_on_the_last_chunk(provider, wire) -> None:
    wire.script(
        Reply(
            text="Checking.",
            tool_calls=(
                ToolUse("get_weather", {"city": "Paris"}, "call_1"),
                ToolUse("get_weather", {"city": "Oslo"}, "call_2"),
            ),
        )
    )

    chunks = collect(provider, wire, tools=[WEATHER])

    assert joined(chunks) == "Checking."
    assert all(not chunk.tool_calls for chunk in chunks[:-1])
    assert chunks[-1].tool_calls == [
        ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
        ToolCall(id="call_2", name="get_weather", arguments={"city": "Oslo"}),
    ]
    assert chunks[-1].finish_reason == "tool_calls"


# -- streaming ---------------------------------------------------------------------------------


def test_stream_yields_the_text_in_pieces_then_finish_usage_and_request_id(provider, wire) -> None:
    wire.script(
        Reply(text="Streaming works fine.", input_tokens=20, output_tokens=5, cached_tokens=8)
    )

    chunks = collect(provider, wire)

    assert joined(chunks) == "Streaming works fine."
    assert len([chunk for chunk in chunks if chunk.text]) > 1
    last = chunks[-1]
    assert last.finish_reason == "stop"
    assert last.usage is not None
    assert last.usage.model_dump() == {"input_tokens": 20, "output_tokens": 5, "cached_tokens": 8}
    assert {chunk.request_id for chunk in chunks} == {wire.last.request_id}


def test_stream_asks_for_usage_where_the_api_needs_asking(provider, wire) -> None:
    collect(provider, wire)

    assert wire.last.body["stream"] is True
    if wire.provider_type == "openai":
        assert wire.last.body["stream_options"] == {"include_usage": True}


def test_stream_cut_mid_way_yields_what_arrived_then_a_bad_response(provider, wire) -> None:
    wire.script(CutStream(Reply(text="one two three four five six"), after=4))
    received: list[ChatChunk] = []

    with pytest.raises(ProviderBadResponse, match="stream"):
        for chunk in provider.stream(HELLO, options(wire)):
            received.append(chunk)

    assert 0 < len(joined(received)) < len("one two three four five six")
    assert all(chunk.finish_reason is None for chunk in received)


def test_malformed_stream_is_a_bad_response(provider, wire) -> None:
    wire.script(Malformed())

    with pytest.raises(ProviderBadResponse):
        collect(provider, wire)


def test_stream_rate_limited_before_it_starts_is_rate_limited(provider, wire) -> None:
    wire.script(RateLimited(retry_after="5"))

    with pytest.raises(ProviderRateLimited) as caught:
        collect(provider, wire)

    assert caught.value.retry_after == 5.0


# -- structured output -------------------------------------------------------------------------

PERSON = {
    "type": "object",
    "properties": {"name": {"type": "string"}, "age": {"type": "integer"}},
    "required": ["name", "age"],
}


def test_structured_output_comes_back_as_json_text(provider, wire) -> None:
    wire.script(Reply(output={"name": "Ada", "age": 36}))

    result = provider.chat(HELLO, options(wire, json_schema=PERSON))

    assert json.loads(result.text) == {"name": "Ada", "age": 36}
    assert result.finish_reason == "stop"
    assert result.tool_calls == []


def test_structured_output_is_requested_the_way_each_api_supports(provider, wire) -> None:
    wire.script(Reply(output={"name": "Ada", "age": 36}))

    provider.chat(HELLO, options(wire, json_schema={**PERSON, "title": "Person record"}))

    body = wire.last.body
    if wire.provider_type == "openai":
        assert body["response_format"] == {
            "type": "json_schema",
            "json_schema": {
                "name": "Person_record",
                "schema": {**PERSON, "title": "Person record"},
                "strict": False,
            },
        }
    else:
        assert body["tool_choice"] == {"type": "tool", "name": "structured_output"}
        assert body["tools"][-1]["input_schema"] == {**PERSON, "title": "Person record"}


def test_a_non_object_schema_round_trips(provider, wire) -> None:
    wire.script(
        Reply(output=["a", "b"] if wire.provider_type == "openai" else {"value": ["a", "b"]})
    )

    result = provider.chat(
        HELLO, options(wire, json_schema={"type": "array", "items": {"type": "string"}})
    )

    assert json.loads(result.text) == ["a", "b"]


def test_structured_output_streams_as_json_text(provider, wire) -> None:
    wire.script(Reply(output={"name": "Ada", "age": 36}))

    chunks = collect(provider, wire, json_schema=PERSON)

    assert json.loads(joined(chunks)) == {"name": "Ada", "age": 36}
    assert chunks[-1].finish_reason == "stop"
    assert chunks[-1].tool_calls == []


# -- tokens ------------------------------------------------------------------------------------


def test_count_tokens_estimates_without_calling_the_api(provider, wire) -> None:
    short = provider.count_tokens("Hello", model=MODELS[wire.provider_type])
    long = provider.count_tokens("Hello " * 50, model=MODELS[wire.provider_type])

    assert 0 < short < long
    assert wire.requests == []
