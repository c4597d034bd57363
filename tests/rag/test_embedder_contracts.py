"""The built-in embedding providers keep the contract every embedder plugin is tested against."""

from __future__ import annotations

import pytest

from rag.embedders.gateway import GatewayEmbedder
from rag.embedders.local import LocalEmbedder
from rag.embeddings import EmbeddingContext
from rag.testing.contracts import EmbedderContractTest


class TestLocalEmbedder(EmbedderContractTest):
    embedder_class = LocalEmbedder
    model_id = "all-MiniLM-L6-v2"
    dimensions = 384
    normalized = True
    invalid = [("all-mpnet-base-v2", {}), ("all-MiniLM-L6-v2", {"device": "cuda"})]


class TestGatewayEmbedder(EmbedderContractTest):
    embedder_class = GatewayEmbedder
    model_id = "text-embedding-3-small"
    dimensions = 384
    invalid = [
        (" ", {}),
        ("text-embedding-3-small", {"region": "eu"}),
        ("text-embedding-3-small", {"request_dimensions": "yes"}),
    ]

    @pytest.fixture
    def context(self, tenant, make_wire_provider, openai_wire) -> EmbeddingContext:
        """The tenant's default LLM provider is on the OpenAI wire server."""
        make_wire_provider(openai_wire, is_default=True)
        return EmbeddingContext(tenant_id=tenant.pk, trace_id="trace-contract")
