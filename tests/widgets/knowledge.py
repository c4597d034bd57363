"""A RAG endpoint to answer from, built through the RAG app's public services, with a hash
embedder registered for the widget tests (no model weights to load)."""

from __future__ import annotations

import hashlib
import math
import random

from rag import services
from rag.embeddings import Embedder
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint

HANDBOOK = {
    "refunds.md": "# Refunds\n\nCustomers are refunded within five business days once the "
    "returned item arrives.\n",
    "shipping.md": "# Shipping\n\nOrders ship from our Lyon warehouse. Standard delivery takes "
    "three days.\n",
}
PROVIDERS = {"widget-hash": "tests.widgets.knowledge.HashEmbedder"}


class HashEmbedder(Embedder):
    """A deterministic unit vector per text."""

    name = "widget-hash"

    def embed_documents(self, texts, context):
        vectors = []
        for text in texts:
            rng = random.Random(hashlib.sha256(text.encode()).digest())
            raw = [rng.gauss(0, 1) for _ in range(384)]
            norm = math.sqrt(sum(x * x for x in raw))
            vectors.append([x / norm for x in raw])
        return vectors


def handbook_endpoint(tenant, name: str = "Support") -> RAGEndpoint:
    """A keyword-searched endpoint over HANDBOOK with a live index version."""
    source = KnowledgeSource.objects.create(tenant=tenant, name=f"{name} docs", type="api")
    for external_id, text in HANDBOOK.items():
        services.push_document(
            source, external_id=external_id, data=text.encode(), content_type="text/markdown"
        )
    model = EmbeddingModel.objects.create(
        tenant=tenant, name=f"{name} hash", provider="widget-hash", model_id="hash"
    )
    endpoint = RAGEndpoint.objects.create(
        tenant=tenant,
        name=name,
        embedding_model=model,
        retrieval_config={"mode": "keyword", "top_k": 2},
    )
    endpoint.sources.set([source])
    version = services.reindex(endpoint)
    assert version.status == "live", version.error
    endpoint.refresh_from_db()
    return endpoint
