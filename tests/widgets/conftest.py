"""Fixtures of the widget tests: a tenant's RAG endpoint and embeds over it."""

from __future__ import annotations

from typing import Any

import pytest

from widgets.models import ChatEmbed

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
