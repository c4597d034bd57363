"""A pytest plugin: wire servers, and providers pointed at them. Register it in a conftest.py
with ``pytest_plugins = ["automate_llm.testing.fixtures"]`` (pytest-django is required).

* ``openai_wire`` / ``anthropic_wire``: a running server of that dialect; ``wire``: each of
  them in turn (a test using it runs once per provider). Script them with the behaviours of
  :mod:`automate_llm.testing` (``wire.script(RateLimited("2"), Reply(text="hi"))``).
* ``make_wire_provider(server, ...)``: an ``LLMProvider`` row pointed at a server (see
  :func:`~automate_llm.testing.providers.create_wire_provider`), of the ``tenant`` fixture's
  tenant unless ``tenant_=`` names another; ``wire_provider`` / ``wire_model``: the tenant's
  default provider and model config on ``wire``. They need a ``tenant`` fixture of your own.
* ``wire_secret``: the API key the providers' SecretRef resolves to, set in the environment.
* ``allow_loopback``: lets the egress policy reach 127.0.0.1 (refused by default).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from automate_core.tenancy.models import Tenant
from automate_core.testing.fake_network import configure_egress
from automate_llm.models import LLMModelConfig, LLMProvider
from automate_llm.testing.anthropic_wire import AnthropicWire
from automate_llm.testing.openai_wire import OpenAIWire
from automate_llm.testing.providers import (
    MODELS,
    SERVERS,
    WIRE_API_KEY,
    WIRE_SECRET,
    create_wire_provider,
)
from automate_llm.testing.wire_server import WireServer


@pytest.fixture
def openai_wire() -> Iterator[OpenAIWire]:
    with OpenAIWire() as server:
        yield server


@pytest.fixture
def anthropic_wire() -> Iterator[AnthropicWire]:
    with AnthropicWire() as server:
        yield server


@pytest.fixture(params=sorted(SERVERS))
def wire(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    """Each wire server in turn: a test using it is a contract test of both providers."""
    with SERVERS[request.param]() as server:
        yield server


@pytest.fixture
def allow_loopback(settings: Any) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])


@pytest.fixture
def wire_secret(monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv(f"AUTOMATE_SECRET_{WIRE_SECRET}", WIRE_API_KEY)
    return WIRE_API_KEY


@pytest.fixture
def make_wire_provider(
    tenant: Tenant, wire_secret: str, allow_loopback: None
) -> Callable[..., LLMProvider]:
    def make(server: WireServer, *, tenant_: Tenant | None = None, **options: Any) -> LLMProvider:
        return create_wire_provider(server, tenant=tenant_ or tenant, **options)

    return make


@pytest.fixture
def wire_provider(make_wire_provider: Callable[..., LLMProvider], wire: WireServer) -> LLMProvider:
    """The tenant's default provider, on ``wire``."""
    return make_wire_provider(wire, is_default=True)


@pytest.fixture
def wire_model(wire_provider: LLMProvider, wire: WireServer) -> LLMModelConfig:
    """The tenant's default model config, on ``wire``."""
    return LLMModelConfig.objects.create(
        tenant=wire_provider.tenant,
        provider=wire_provider,
        name="Wire model",
        slug="wire-model",
        model_id=MODELS[wire.provider_type],
        is_default=True,
    )
