"""Fixtures for everything that calls a model: local wire servers and providers pointed at them.

* ``openai_wire`` / ``anthropic_wire``: a running server of that dialect; ``wire``: each of
  them in turn (tests using it run once per provider). Script them with the behaviours of
  :mod:`tests.automate_llm.wire` (``wire.script(RateLimited("2"), Reply(text="hi"))``).
* ``make_wire_provider(server, ...)``: an ``LLMProvider`` row of the tenant pointed at a server,
  its API key a SecretRef whose value the server insists on; ``wire_provider`` /
  ``wire_model``: the tenant's default provider and model config on ``wire``.
* ``allow_loopback``: lets the egress policy reach 127.0.0.1 (refused by default).
* ``sleeps`` / ``gateway``: a gateway whose backoff waits are recorded, not slept.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from automate_core.tenancy.models import Tenant
from automate_llm.gateway import Gateway
from automate_llm.models import LLMModelConfig, LLMProvider
from tests.automate_core.governance.fake_network import configure_egress
from tests.automate_llm.wire import AnthropicWire, OpenAIWire, WireServer

WIRE_API_KEY = "sk-wire-test-0123456789abcdef"
#: The secret name the providers' api_key refers to (read from AUTOMATE_SECRET_<name>).
WIRE_SECRET = "WIRE_API_KEY"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-5"}
SERVERS: dict[str, type[WireServer]] = {"openai": OpenAIWire, "anthropic": AnthropicWire}


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
    def make(
        server: WireServer,
        *,
        slug: str | None = None,
        is_default: bool = False,
        tenant_: Tenant | None = None,
        **config: Any,
    ) -> LLMProvider:
        server.api_key = wire_secret
        owner = tenant_ or tenant
        slug = slug or f"{server.provider_type}-wire"
        row = LLMProvider(
            tenant=owner,
            name=slug,
            slug=slug,
            provider_type=server.provider_type,
            config={
                "api_key": {"$secret": WIRE_SECRET},
                "base_url": server.base_url,
                **config,
            },
            is_default=is_default,
        )
        row.full_clean()
        row.save()
        return row

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


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff waits the ``gateway`` fixture asked for, in order."""
    return []


@pytest.fixture
def gateway(sleeps: list[float]) -> Gateway:
    return Gateway(sleep=sleeps.append)
