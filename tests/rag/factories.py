"""Building RAG state for tests through the public services."""

from __future__ import annotations

from typing import Any

from rag import services
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint

HANDBOOK = {
    "refunds.md": """# Refunds

Customers are refunded within five business days once the returned item arrives.
Refunds go back to the original payment method.
""",
    "shipping.md": """# Shipping

Orders ship from our Lyon warehouse. Standard delivery takes three days in France.
Express delivery arrives the next morning.
""",
    "security.md": """# Account security

Enable two-factor authentication in your profile settings. Passwords must have twelve
characters. Report a lost phone to support so we can reset your second factor.
""",
}


def make_model(tenant, provider: str = "counting") -> EmbeddingModel:
    model_id = "all-MiniLM-L6-v2" if provider == "local" else "hash"
    return EmbeddingModel.objects.create(
        tenant=tenant, name=f"{provider} model", provider=provider, model_id=model_id
    )


def make_source(tenant, name: str = "Docs", type: str = "api", **fields: Any) -> KnowledgeSource:
    return KnowledgeSource.objects.create(tenant=tenant, name=name, type=type, **fields)


def make_endpoint(
    tenant,
    *sources: KnowledgeSource,
    provider: str = "counting",
    name: str = "Support",
    model: EmbeddingModel | None = None,
    **fields: Any,
) -> RAGEndpoint:
    endpoint = RAGEndpoint.objects.create(
        tenant=tenant, name=name, embedding_model=model or make_model(tenant, provider), **fields
    )
    endpoint.sources.set(sources)
    return endpoint


def push(source, external_id: str, text: str, **kwargs: Any):
    kwargs.setdefault("content_type", "text/markdown")
    return services.push_document(source, external_id=external_id, data=text.encode(), **kwargs)


def handbook(tenant, provider: str = "counting", **endpoint_fields: Any) -> RAGEndpoint:
    """An endpoint over an api source holding HANDBOOK, with a live version."""
    source = make_source(tenant)
    for name, text in HANDBOOK.items():
        push(source, name, text, metadata={"topic": name.removesuffix(".md")})
    endpoint = make_endpoint(tenant, source, provider=provider, **endpoint_fields)
    version = services.reindex(endpoint)
    assert version.status == "live", version.error
    endpoint.refresh_from_db()
    return endpoint
