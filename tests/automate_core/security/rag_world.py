"""The RAG part of the security world: each tenant gets the same source and endpoint slugs,
documents with the same external ids, and a live index built with the real local model."""

from __future__ import annotations

from typing import Any

from automate_core.tenancy.models import APIKey, Tenant
from rag import services
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint


def _push(source: KnowledgeSource, external_id: str, text: str, **metadata: Any) -> Any:
    document, _ = services.push_document(
        source,
        external_id=external_id,
        data=text.encode(),
        content_type="text/markdown",
        metadata=metadata,
    )
    return document


def build_rag(tenant: Tenant) -> dict[str, Any]:
    slug = tenant.slug
    # Same slugs and external ids in both tenants.
    source = KnowledgeSource.objects.create(tenant=tenant, name="Docs", type="api")
    secret = _push(
        source,
        "shared.md",
        f"# Launch\n\nThe launch code of {slug} is {slug.upper()}-4242.",
        visibility="internal",
    )
    public = _push(source, "public.md", f"# Hours\n\n{slug} opens at nine.", visibility="public")
    private_source = KnowledgeSource.objects.create(
        tenant=tenant, name=f"{slug} private docs", type="api"
    )
    private_doc = _push(private_source, "notes.md", f"# Notes\n\n{slug} private launch notes.")
    model = EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")  # the local provider
    endpoint = RAGEndpoint.objects.create(tenant=tenant, name="Support", embedding_model=model)
    endpoint.sources.set([source])
    private_endpoint = RAGEndpoint.objects.create(
        tenant=tenant,
        name=f"{slug} internal",
        embedding_model=model,
        access_policy={"forced_filters": {"visibility": "public"}},
    )
    private_endpoint.sources.set([source, private_source])
    for target in (endpoint, private_endpoint):
        version = services.reindex(target)
        assert version.status == "live", version.error
        target.refresh_from_db()
    _, query_key = APIKey.issue(tenant=tenant, name=f"{slug}-rag", scopes=["rag:support"])
    return {
        "source": source,
        "private_source": private_source,
        "secret_doc": secret,
        "public_doc": public,
        "private_doc": private_doc,
        "embedding_model": model,
        "endpoint": endpoint,
        "private_endpoint": private_endpoint,
        "version": endpoint.live_version,
        "query_key": query_key,
        "launch_code": f"{slug.upper()}-4242",
    }
