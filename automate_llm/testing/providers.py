"""LLM provider rows pointed at a wire server, for tests that call models through the gateway.

:func:`create_wire_provider` saves an :class:`~automate_llm.models.LLMProvider` whose
``base_url`` is the server's and whose API key is the SecretRef ``WIRE_SECRET``; the server
then refuses any request that does not carry :data:`WIRE_API_KEY`, so a test fails when the
secret is not resolved and sent. Set the secret first (``AUTOMATE_SECRET_WIRE_API_KEY`` in
the environment; the ``wire_secret`` fixture of :mod:`automate_llm.testing.fixtures` does).
"""

from __future__ import annotations

from typing import Any

from automate_core.tenancy.models import Tenant
from automate_llm.models import LLMProvider
from automate_llm.testing.anthropic_wire import AnthropicWire
from automate_llm.testing.openai_wire import OpenAIWire
from automate_llm.testing.wire_server import WireServer

WIRE_API_KEY = "sk-wire-test-0123456789abcdef"
#: The secret name the providers' api_key refers to (read from AUTOMATE_SECRET_<name>).
WIRE_SECRET = "WIRE_API_KEY"  # noqa: S105  (the name of a secret, not a value)
#: A model id each provider type's wire server is asked for.
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-5"}
#: The wire server of each built-in provider type.
SERVERS: dict[str, type[WireServer]] = {"openai": OpenAIWire, "anthropic": AnthropicWire}


def create_wire_provider(
    server: WireServer,
    *,
    tenant: Tenant,
    slug: str | None = None,
    is_default: bool = False,
    **config: Any,
) -> LLMProvider:
    """A validated, saved provider row of ``tenant`` that talks to ``server``; ``config``
    adds to (or overrides) the provider config."""
    server.api_key = WIRE_API_KEY
    slug = slug or f"{server.provider_type}-wire"
    row = LLMProvider(
        tenant=tenant,
        name=slug,
        slug=slug,
        provider_type=server.provider_type,
        config={"api_key": {"$secret": WIRE_SECRET}, "base_url": server.base_url, **config},
        is_default=is_default,
    )
    row.full_clean()
    row.save()
    return row
