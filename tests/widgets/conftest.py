"""Fixtures of the widget tests: a tenant's RAG endpoint and embeds over it, and the data chat
shop for data-chat embeds (see :mod:`.datachat`)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.automate_datachat.conftest import shop_tenants  # noqa: F401
from widgets.models import ChatEmbed

from .datachat import my_orders, shop_model, shop_tenant  # noqa: F401
from .knowledge import PROVIDERS, handbook_endpoint

ORIGIN = "https://shop.example.com"


@pytest.fixture(autouse=True)
def widget_settings(settings):
    settings.AUTOMATE_RAG = {"EMBEDDING_PROVIDERS": PROVIDERS}
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}
    return settings


@pytest.fixture
def endpoint(tenant):
    return handbook_endpoint(tenant)


def make_embed(endpoint, **fields: Any) -> ChatEmbed:
    fields.setdefault("allowed_origins", [ORIGIN])
    return ChatEmbed.objects.create(
        tenant=endpoint.tenant, name="Help", rag_endpoint=endpoint, **fields
    )


@pytest.fixture
def embed(endpoint) -> ChatEmbed:
    return make_embed(endpoint)


@pytest.fixture
def model(make_wire_provider, openai_wire):
    """The tenant's default model, on the local OpenAI wire server."""
    from automate_llm.models import LLMModelConfig
    from automate_llm.testing.providers import MODELS

    provider = make_wire_provider(openai_wire, is_default=True)
    return LLMModelConfig.objects.create(
        tenant=provider.tenant,
        provider=provider,
        name="Wire model",
        slug="wire-model",
        model_id=MODELS["openai"],
        is_default=True,
    )
