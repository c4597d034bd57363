"""Fixtures of the RAG tests: test embedding providers beside the real local one, and the LLM
gateway's wire servers and providers (``wire``, ``wire_model``, ``make_wire_provider``...) for
the answer tests, imported from ``tests/automate_llm/`` (``asgi_url``: the site under uvicorn)."""

from __future__ import annotations

import pytest

from rag.models import EmbeddingModel
from tests.automate_llm.conftest import (  # noqa: F401  (fixtures)
    allow_loopback,
    anthropic_wire,
    make_wire_provider,
    openai_wire,
    wire,
    wire_model,
    wire_provider,
    wire_secret,
)
from tests.automate_llm.test_chat_api import asgi_url  # noqa: F401  (uvicorn serving the site)

from .embedders import TEST_PROVIDERS, CountingEmbedder


@pytest.fixture(autouse=True)
def rag_settings(settings):
    """Register the test providers; the rest of AUTOMATE_RAG stays default unless a test says."""
    settings.AUTOMATE_RAG = {"EMBEDDING_PROVIDERS": TEST_PROVIDERS}
    CountingEmbedder.calls.clear()
    return settings


def configure_rag(settings, **values) -> None:
    settings.AUTOMATE_RAG = {**settings.AUTOMATE_RAG, **values}


@pytest.fixture
def counting_model(tenant) -> EmbeddingModel:
    return EmbeddingModel.objects.create(
        tenant=tenant, name="Counting", provider="counting", model_id="hash"
    )


@pytest.fixture
def local_model(tenant) -> EmbeddingModel:
    return EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")
