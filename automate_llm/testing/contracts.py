"""The contract test base of LLM provider plugins. Subclass it, fill in the class attributes,
and pytest runs every test against a wire server (pytest-django is required).

.. code-block:: python

    class TestMyProvider(LLMProviderContractTest):
        provider_class = MyProvider          # speaks the OpenAI API
        wire_class = OpenAIWire
        model = "my-model"
        embedding_model = "my-embedder"      # or None when it has no embeddings

The tests hold what :class:`~automate_llm.providers.base.LLMProvider` promises the gateway:
normalized results and chunks, tool calls parsed, and each failure raised as the error of
:mod:`automate_llm.errors` that tells the gateway whether to retry (and after how long).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, ClassVar

import pytest

from automate_core import plugins
from automate_core.testing.fake_network import configure_egress
from automate_llm.errors import ProviderBadResponse, ProviderRejected, TransientLLMError
from automate_llm.providers.base import LLMProvider, provider_class
from automate_llm.testing.behaviours import (
    CutStream,
    Embeddings,
    Malformed,
    RateLimited,
    Rejected,
    Reply,
    ServerError,
    ToolUse,
)
from automate_llm.testing.wire_server import WireServer
from automate_llm.types import ChatChunk, ChatMessage, ChatOptions, ToolSpec

HELLO = [ChatMessage(role="user", content="Say hello.")]
LOOKUP = ToolSpec(
    name="lookup_order",
    description="Find an order by its number.",
    parameters={"type": "object", "properties": {"number": {"type": "string"}}},
)


class LLMProviderContractTest:
    provider_class: ClassVar[type[LLMProvider]]
    #: The wire server that speaks the API the provider calls.
    wire_class: ClassVar[type[WireServer]]
    model: ClassVar[str]
    #: An embedding model id, when the provider ``supports_embeddings``.
    embedding_model: ClassVar[str | None] = None
    #: The API key the provider is built with and the wire server insists on.
    api_key: ClassVar[str] = "sk-contract-0123456789abcdef"

    def config(self, wire: WireServer) -> dict[str, Any]:
        """The provider config pointed at ``wire``, SecretRefs resolved (as the gateway builds
        a provider); override to add keys your provider needs."""
        return {"api_key": self.api_key, "base_url": wire.base_url}

    def stored_config(self, wire: WireServer) -> dict[str, Any]:
        """The config as it is saved on a provider row: the API key a SecretRef."""
        return {**self.config(wire), "api_key": {"$secret": "CONTRACT_API_KEY"}}

    def options(self, **values: Any) -> ChatOptions:
        return ChatOptions(model=self.model, max_tokens=64, **values)

    @pytest.fixture
    def wire(self, settings: Any) -> Iterator[WireServer]:
        """The wire server, running, reachable through the egress policy (loopback allowed)."""
        configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
        with self.wire_class() as server:
            server.api_key = self.api_key
            yield server

    @pytest.fixture
    def provider(self, wire: WireServer) -> LLMProvider:
        return self.provider_class(self.config(wire))

    # -- registration and config ------------------------------------------------------------

    def test_is_registered_under_its_provider_type(self) -> None:
        plugins.refresh()
        assert provider_class(self.provider_class.provider_type) is self.provider_class

    def test_stored_config_has_no_problems(self, wire: WireServer) -> None:
        assert self.provider_class.validate_config(self.stored_config(wire)) == []

    # -- answers ----------------------------------------------------------------------------

    def test_chat_returns_normalized_text_usage_and_finish_reason(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        wire.script(Reply(text="Hello, world.", input_tokens=30, output_tokens=4))

        result = provider.chat(HELLO, self.options())

        assert (result.text, result.finish_reason) == ("Hello, world.", "stop")
        assert (result.usage.input_tokens, result.usage.output_tokens) == (30, 4)
        assert result.provider == self.provider_class.provider_type

    def test_a_cut_off_answer_finishes_with_length(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        wire.script(Reply(text="Hello, wor", finish_reason="length"))

        assert provider.chat(HELLO, self.options()).finish_reason == "length"

    def test_tool_calls_come_back_parsed(self, provider: LLMProvider, wire: WireServer) -> None:
        wire.script(Reply(text="", tool_calls=(ToolUse("lookup_order", {"number": "A-7"}),)))

        result = provider.chat(HELLO, self.options(tools=[LOOKUP]))

        assert result.finish_reason == "tool_calls"
        (call,) = result.tool_calls
        assert (call.name, call.arguments) == ("lookup_order", {"number": "A-7"})
        assert call.id

    def test_stream_yields_text_deltas_then_finish_reason_and_usage(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        self._needs_streaming()
        wire.script(Reply(text="Hello, world.", chunk_size=3, input_tokens=9, output_tokens=4))

        chunks = list(provider.stream(HELLO, self.options()))

        assert "".join(chunk.text for chunk in chunks) == "Hello, world."
        assert len([chunk for chunk in chunks if chunk.text]) > 1
        last = chunks[-1]
        assert last.finish_reason == "stop"
        assert last.usage is not None
        assert (last.usage.input_tokens, last.usage.output_tokens) == (9, 4)

    def test_streamed_tool_calls_arrive_whole(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        self._needs_streaming()
        wire.script(Reply(text="", tool_calls=(ToolUse("lookup_order", {"number": "A-7"}),)))

        chunks = list(provider.stream(HELLO, self.options(tools=[LOOKUP])))

        calls = [call for chunk in chunks for call in chunk.tool_calls]
        assert [(call.name, call.arguments) for call in calls] == [
            ("lookup_order", {"number": "A-7"})
        ]
        assert chunks[-1].finish_reason == "tool_calls"

    def test_embeddings_are_one_vector_per_text_in_order(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        if not (self.provider_class.supports_embeddings and self.embedding_model):
            pytest.skip("the provider has no embeddings")
        wire.script(Embeddings(vectors=((1.0, 0.0), (0.0, 1.0))))

        result = provider.embed(["first", "second"], model=self.embedding_model)

        assert result.vectors == [[1.0, 0.0], [0.0, 1.0]]

    # -- failures ---------------------------------------------------------------------------

    def test_429_is_transient_with_the_retry_after_seconds(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        wire.script(RateLimited(retry_after="3"))

        with pytest.raises(TransientLLMError) as caught:
            provider.chat(HELLO, self.options())

        assert caught.value.retry_after == 3

    def test_5xx_is_transient(self, provider: LLMProvider, wire: WireServer) -> None:
        wire.script(ServerError(503))

        with pytest.raises(TransientLLMError):
            provider.chat(HELLO, self.options())

    def test_other_4xx_is_rejected_and_not_retryable(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        wire.script(Rejected(400, "Bad request."))

        with pytest.raises(ProviderRejected) as caught:
            provider.chat(HELLO, self.options())

        assert caught.value.retryable is False

    def test_a_malformed_answer_is_a_bad_response(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        wire.script(Malformed())

        with pytest.raises(ProviderBadResponse):
            provider.chat(HELLO, self.options())

    def test_a_stream_cut_mid_way_yields_what_arrived_then_a_bad_response(
        self, provider: LLMProvider, wire: WireServer
    ) -> None:
        self._needs_streaming()
        text = "a long answer cut short"
        wire.script(CutStream(Reply(text=text, chunk_size=2), after=4))

        received: list[ChatChunk] = []
        with pytest.raises(ProviderBadResponse):
            for chunk in provider.stream(HELLO, self.options()):
                received.append(chunk)

        assert 0 < len("".join(chunk.text for chunk in received)) < len(text)
        assert all(chunk.finish_reason is None for chunk in received)

    def _needs_streaming(self) -> None:
        if not self.provider_class.supports_streaming:
            pytest.skip("the provider does not stream")
