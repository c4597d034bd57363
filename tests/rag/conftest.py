"""Fixtures of the RAG tests: test embedding providers beside the real local one. The answer
tests' wire servers and providers (``wire``, ``wire_model``, ``make_wire_provider``...) come
from the plugin :mod:`automate_llm.testing.fixtures`, ``asgi_url`` from ``tests/conftest.py``."""

from __future__ import annotations

import pytest

from rag.models import EmbeddingModel

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
