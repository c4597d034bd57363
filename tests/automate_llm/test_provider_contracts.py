"""The built-in providers keep the contract every provider plugin is tested against."""

from __future__ import annotations

from automate_llm.providers.anthropic import AnthropicProvider
from automate_llm.providers.openai import OpenAIProvider
from automate_llm.testing import AnthropicWire, OpenAIWire
from automate_llm.testing.contracts import LLMProviderContractTest


class TestOpenAIProvider(LLMProviderContractTest):
    provider_class = OpenAIProvider
    wire_class = OpenAIWire
    model = "gpt-4o-mini"
    embedding_model = "text-embedding-3-small"


class TestAnthropicProvider(LLMProviderContractTest):
    provider_class = AnthropicProvider
    wire_class = AnthropicWire
    model = "claude-sonnet-5"
