"""Provider config checks, what each provider takes from config (and never from the process
environment), OpenAI specifics (organization, max-tokens parameter, embeddings) and the
registration of both built-ins through entry points."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError

from automate_llm.errors import ProviderRejected
from automate_llm.providers.anthropic import AnthropicProvider
from automate_llm.providers.base import provider_class
from automate_llm.providers.openai import OpenAIProvider
from automate_llm.testing import Embeddings, Rejected
from automate_llm.types import ChatMessage, ChatOptions

HELLO = [ChatMessage(role="user", content="Hi")]
KEY = {"$secret": "OPENAI_KEY"}
PROVIDERS = [OpenAIProvider, AnthropicProvider]


@pytest.mark.parametrize(
    "name, cls", [("openai", OpenAIProvider), ("anthropic", AnthropicProvider)]
)
def test_built_in_providers_are_registered_as_entry_points(name, cls) -> None:
    assert provider_class(name) is cls


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_config_with_a_secret_ref_key_is_valid(cls) -> None:
    assert cls.validate_config({"api_key": KEY, "base_url": "https://llm.example.com/v1"}) == []


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_literal_api_key_is_refused(cls) -> None:
    problems = cls.validate_config({"api_key": "sk-live-123"})

    assert problems == ['api_key must be a SecretRef ({"$secret": NAME}), never the key itself']


@pytest.mark.parametrize("cls", PROVIDERS)
def test_unknown_keys_bad_urls_headers_and_timeouts_are_each_reported(cls) -> None:
    problems = cls.validate_config(
        {
            "api_key": KEY,
            "base_url": "ftp://llm.example.com",
            "headers": {"X-Team": 7},
            "timeout": -1,
            "colour": "blue",
        }
    )

    assert problems[0].startswith("unknown key 'colour'")
    assert problems[1:] == [
        "base_url must be an absolute http(s) URL",
        "headers.X-Team must be a string or a SecretRef",
        "timeout must be a positive number of seconds",
    ]


@pytest.mark.parametrize("cls", PROVIDERS)
def test_a_malformed_secret_ref_is_reported(cls) -> None:
    problems = cls.validate_config({"api_key": {"$secret": "bad name!"}})

    assert len(problems) == 1
    assert "secret name" in problems[0]


def test_openai_needs_a_key_for_its_own_api_but_not_for_a_local_server() -> None:
    assert OpenAIProvider.validate_config({}) == [
        'api_key is required: a SecretRef ({"$secret": NAME})'
    ]
    assert OpenAIProvider.validate_config({"base_url": "http://ollama.internal:11434/v1"}) == []


def test_anthropic_always_needs_a_key() -> None:
    assert AnthropicProvider.validate_config({"base_url": "https://proxy.example.com"}) == [
        'api_key is required: a SecretRef ({"$secret": NAME})'
    ]


def test_openai_max_tokens_param_must_be_one_of_two_names() -> None:
    assert OpenAIProvider.validate_config({"api_key": KEY, "max_tokens_param": "limit"}) == [
        "max_tokens_param must be max_tokens or max_completion_tokens"
    ]


def test_the_provider_row_refuses_an_invalid_config_on_clean(tenant) -> None:
    from automate_llm.models import LLMProvider

    row = LLMProvider(tenant=tenant, name="Bad", provider_type="anthropic", config={})

    with pytest.raises(ValidationError, match="api_key is required"):
        row.full_clean()


# -- what reaches the wire ---------------------------------------------------------------------


def test_sdk_environment_variables_never_reach_a_tenants_provider(
    make_wire_provider, wire, monkeypatch
) -> None:
    monkeypatch.setenv("OPENAI_CUSTOM_HEADERS", "X-Operator-Token: operator-secret")
    monkeypatch.setenv("ANTHROPIC_CUSTOM_HEADERS", "X-Operator-Token: operator-secret")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-operator")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-operator")
    row = make_wire_provider(wire)

    row.get_client().chat(HELLO, ChatOptions(model="m", max_tokens=5))

    headers = wire.last.headers
    assert "x-operator-token" not in headers
    assert "openai-organization" not in headers
    assert "openai-project" not in headers


def test_configured_headers_are_sent_with_secret_refs_resolved(make_wire_provider, wire) -> None:
    row = make_wire_provider(
        wire, headers={"X-Team": "research", "X-Gateway-Key": {"$secret": "WIRE_API_KEY"}}
    )

    row.get_client().chat(HELLO, ChatOptions(model="m", max_tokens=5))

    assert wire.last.headers["x-team"] == "research"
    assert wire.last.headers["x-gateway-key"] == wire.api_key


def test_openai_organization_and_project_are_sent(make_wire_provider, openai_wire) -> None:
    row = make_wire_provider(openai_wire, organization="org-acme", project="proj-1")

    row.get_client().chat(HELLO, ChatOptions(model="gpt-4o-mini"))

    assert openai_wire.last.headers["openai-organization"] == "org-acme"
    assert openai_wire.last.headers["openai-project"] == "proj-1"


def test_openai_compatible_servers_get_max_tokens(make_wire_provider, openai_wire) -> None:
    row = make_wire_provider(openai_wire)

    row.get_client().chat(HELLO, ChatOptions(model="llama3", max_tokens=9))

    assert openai_wire.last.body["max_tokens"] == 9
    assert "max_completion_tokens" not in openai_wire.last.body


def test_openai_max_tokens_param_can_be_chosen(make_wire_provider, openai_wire) -> None:
    row = make_wire_provider(openai_wire, max_tokens_param="max_completion_tokens")

    row.get_client().chat(HELLO, ChatOptions(model="o3-mini", max_tokens=9))

    assert openai_wire.last.body["max_completion_tokens"] == 9
    assert "max_tokens" not in openai_wire.last.body


def test_openai_works_without_a_key_against_a_local_server(
    tenant, allow_loopback, openai_wire
) -> None:
    from automate_llm.models import LLMProvider

    row = LLMProvider.objects.create(
        tenant=tenant,
        name="Ollama",
        provider_type="openai",
        config={"base_url": openai_wire.base_url},
    )

    result = row.get_client().chat(HELLO, ChatOptions(model="llama3"))

    assert result.text == "Hello from the wire."


def test_anthropic_sends_temperature_only_when_one_is_set(
    make_wire_provider, anthropic_wire
) -> None:
    client = make_wire_provider(anthropic_wire).get_client()

    client.chat(HELLO, ChatOptions(model="claude-sonnet-5"))
    client.chat(HELLO, ChatOptions(model="claude-3-5-sonnet", temperature=0.2))

    assert "temperature" not in anthropic_wire.requests[0].body
    assert anthropic_wire.requests[1].body["temperature"] == 0.2


# -- embeddings --------------------------------------------------------------------------------


def test_openai_embeds_texts_in_order_with_usage(make_wire_provider, openai_wire) -> None:
    openai_wire.script(Embeddings(vectors=((0.1, 0.2), (0.3, 0.4)), input_tokens=6))
    client = make_wire_provider(openai_wire).get_client()

    result = client.embed(["first", "second"], model="text-embedding-3-small")

    assert result.vectors == [[0.1, 0.2], [0.3, 0.4]]
    assert result.usage.input_tokens == 6
    assert result.model == "text-embedding-3-small"
    assert openai_wire.last.body == {
        "model": "text-embedding-3-small",
        "input": ["first", "second"],
        "encoding_format": "float",
    }


def test_openai_embedding_errors_are_translated(make_wire_provider, openai_wire) -> None:
    openai_wire.script(Rejected(400, "input too long"))

    with pytest.raises(ProviderRejected, match="input too long"):
        make_wire_provider(openai_wire).get_client().embed(["x"], model="e")


def test_anthropic_declares_no_embeddings() -> None:
    assert AnthropicProvider.supports_embeddings is False
    assert OpenAIProvider.supports_embeddings is True
