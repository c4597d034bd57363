"""The RAG app's public operations: what the API, steps, commands and other apps call.

Every function takes the tenant's objects (or a tenant to resolve them in) and never crosses
tenants: endpoints and sources are looked up with ``for_tenant``. An answer function (``answer``,
through the LLM gateway) will sit beside :func:`query` and reuse its results.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

from django.db import connection, transaction

from automate_core.api.tracing import current_trace_id, new_trace_id
from automate_core.errors import InvalidInputError
from automate_core.governance import audit
from automate_core.outbox import store
from automate_core.tenancy.models import Tenant
from rag import indexing, search
from rag.conf import rag_settings
from rag.embeddings import embed_query
from rag.errors import EndpointNotFound, IndexNotReady, SourceNotFound
from rag.filters import MetadataFilter, parse_filters
from rag.models import Chunk, Document, IndexVersion, KnowledgeSource, RAGEndpoint
from rag.search import QueryResult, ResultItem, RetrievalConfig

MAX_QUERY_CHARS = 4000

# -- lookups ---------------------------------------------------------------------------------


def get_endpoint(tenant: Tenant | uuid.UUID | str, slug: str) -> RAGEndpoint:
    """The tenant's active endpoint ``slug``; :class:`EndpointNotFound` otherwise."""
    endpoint = (
        RAGEndpoint.objects.for_tenant(tenant)
        .filter(slug=slug, is_active=True)
        .select_related("live_version", "live_version__embedding_model")
        .first()
    )
    if endpoint is None:
        raise EndpointNotFound(details={"endpoint": slug})
    return endpoint


def get_source(tenant: Tenant | uuid.UUID | str, slug: str) -> KnowledgeSource:
    source = KnowledgeSource.objects.for_tenant(tenant).filter(slug=slug).first()
    if source is None:
        raise SourceNotFound(details={"source": slug})
    return source


def forced_filters(endpoint: RAGEndpoint) -> MetadataFilter:
    return parse_filters((endpoint.access_policy or {}).get("forced_filters") or {})


# -- query -----------------------------------------------------------------------------------


def _ms(since: float) -> float:
    return round((time.perf_counter() - since) * 1000, 3)


def query(
    endpoint: RAGEndpoint,
    text: str,
    *,
    top_k: int | None = None,
    filters: dict[str, Any] | None = None,
    exact: bool = False,
    version: IndexVersion | None = None,
) -> QueryResult:
    """Search the endpoint's live version (hybrid by default, see :mod:`rag.search`).

    The access policy's forced filters are ANDed with ``filters``: a caller can narrow what the
    policy allows, never widen it. ``exact`` skips the HNSW graph (evaluation uses it to measure
    recall); ``version`` queries another version of the same endpoint (evaluation, admin).
    """
    started = time.perf_counter()
    if not isinstance(text, str) or not text.strip():
        raise InvalidInputError("query must be a non-empty string", details={"field": "query"})
    if len(text) > MAX_QUERY_CHARS:
        raise InvalidInputError(
            f"query is at most {MAX_QUERY_CHARS} characters", details={"field": "query"}
        )
    config = RetrievalConfig.from_json(endpoint.retrieval_config)
    top_k = config.top_k if top_k is None else top_k
    max_top_k = int(rag_settings.MAX_TOP_K)
    if not isinstance(top_k, int) or isinstance(top_k, bool) or not 1 <= top_k <= max_top_k:
        raise InvalidInputError(
            f"top_k must be an integer from 1 to {max_top_k}", details={"field": "top_k"}
        )
    flt = parse_filters(filters) & forced_filters(endpoint)
    if version is None:
        version = endpoint.live_version
    elif version.endpoint_id != endpoint.pk:
        raise InvalidInputError("that index version belongs to another endpoint")
    if version is None:
        raise IndexNotReady(details={"endpoint": endpoint.slug})

    timings: dict[str, float] = {}
    strategy: dict[str, Any] = {"mode": config.mode}
    limit = max(config.candidates, top_k)
    vector: list[float] | None = None
    if config.mode != "keyword":
        t = time.perf_counter()
        vector = embed_query(version.embedding_model, text)
        timings["embed_ms"] = _ms(t)

    vector_hits: list[tuple[uuid.UUID, float]] = []
    keyword_hits: list[tuple[uuid.UUID, float]] = []
    if connection.vendor == "postgresql":
        if vector is not None:
            t = time.perf_counter()
            vector_hits, how = search.vector_search_pg(
                version, vector, flt, limit, config, exact=exact
            )
            strategy.update(how)
            timings["vector_ms"] = _ms(t)
        if config.mode != "vector":
            t = time.perf_counter()
            keyword_hits = search.keyword_search_pg(version, text, flt, limit)
            timings["keyword_ms"] = _ms(t)
    else:
        t = time.perf_counter()
        vector_hits, keyword_hits = search.search_python(version, vector, text, flt, limit)
        if config.mode == "vector":
            keyword_hits = []
        strategy["vector"] = "exact" if vector is not None else None
        timings["search_ms"] = _ms(t)

    t = time.perf_counter()
    fused = search.fuse(vector_hits, keyword_hits, config)
    timings["fusion_ms"] = _ms(t)

    t = time.perf_counter()
    picked = fused[:limit] if config.reranker else fused[:top_k]
    items = _fetch(picked)
    timings["fetch_ms"] = _ms(t)
    if config.reranker:
        t = time.perf_counter()
        given = {id(item) for item in items}
        reordered = search.reranker(config.reranker)(text, list(items))
        items = [item for item in reordered if id(item) in given]
        timings["rerank_ms"] = _ms(t)
        strategy["reranker"] = config.reranker
    items = items[:top_k]
    if config.highlights and config.mode != "vector" and items:
        t = time.perf_counter()
        ids = [item.chunk_id for item in items]
        if connection.vendor == "postgresql":
            marks = search.highlights_pg(ids, text)
        else:
            marks = search.highlights_python({i.chunk_id: i.text for i in items}, text)
        for item in items:
            item.highlights = marks.get(item.chunk_id, [])
        timings["highlight_ms"] = _ms(t)
    timings["total_ms"] = _ms(started)
    return QueryResult(
        results=items,
        index_version={"id": str(version.pk), "number": version.number},
        timings=timings,
        trace_id=current_trace_id() or new_trace_id(),
        strategy=strategy,
    )


def _fetch(candidates: list[search.Candidate]) -> list[ResultItem]:
    """Text, document and metadata of the candidates, in the candidates' order."""
    fields = (
        "pk",
        "text",
        "title",
        "position",
        "metadata",
        "document_id",
        "document__external_id",
        "document__title",
        "document__source__slug",
    )
    rows = {
        row[0]: row
        for row in Chunk.objects.filter(pk__in=[c.chunk_id for c in candidates])
        .order_by()
        .values_list(*fields)
    }
    items = []
    for c in candidates:
        row = rows.get(c.chunk_id)
        if row is None:  # removed by a sync since it was found
            continue
        pk, text, title, position, metadata, document_id, external_id, doc_title, source = row
        ranks = {
            "vector_rank": c.vector_rank,
            "vector_distance": c.vector_distance,
            "keyword_rank": c.keyword_rank,
            "keyword_score": c.keyword_score,
        }
        items.append(
            ResultItem(
                chunk_id=pk,
                text=text,
                title=title,
                score=round(c.score, 6),
                document={
                    "id": str(document_id),
                    "external_id": external_id,
                    "title": doc_title,
                    "source": source,
                },
                metadata=metadata,
                highlights=[],
                position=position,
                ranks={k: v for k, v in ranks.items() if v is not None},
            )
        )
    return items


def health_check(endpoint: RAGEndpoint) -> dict[str, Any]:
    """Whether the endpoint can answer and what stands in the way (a dict safe to show)."""
    problems: list[str] = []
    version = endpoint.live_version
    if not endpoint.is_active:
        problems.append("the endpoint is inactive")
    if version is None:
        problems.append("no live index version: sync the sources or re-index")
    sources = []
    for source in endpoint.sources.all():
        docs = Document.objects.for_tenant(endpoint.tenant_id).filter(source=source)
        failed = docs.filter(status=Document.Status.FAILED).count()
        sources.append(
            {
                "slug": source.slug,
                "type": source.type,
                "sync_status": source.sync_status,
                "documents": docs.count(),
                "failed_documents": failed,
            }
        )
        if source.sync_status == KnowledgeSource.SyncStatus.FAILED:
            problems.append(f"source {source.slug!r} failed to sync: {source.last_error[:200]}")
    if not sources:
        problems.append("the endpoint has no sources")
    try:
        from rag.embeddings import embedder_class

        embedder_class(endpoint.embedding_model.provider)
    except Exception as exc:
        problems.append(f"embedding provider: {exc}")
    building = endpoint.versions.filter(status="building").first()
    return {
        "ok": not problems,
        "problems": problems,
        "live_version": None
        if version is None
        else {
            "id": str(version.pk),
            "number": version.number,
            "chunks": Chunk.objects.filter(index_version=version).count(),
            "stale_documents": indexing.stale_documents(version),
        },
        "building_version": None if building is None else building.number,
        "sources": sources,
    }


# -- index versions --------------------------------------------------------------------------


def queue_reindex(endpoint: RAGEndpoint, *, actor: str = "system") -> IndexVersion:
    """Create a building version and enqueue its build (``rag.build``); the live version keeps
    serving until the build switches. Refused while another build runs."""
    with transaction.atomic():
        version = indexing.create_version(endpoint)
        store.enqueue(
            "rag.build",
            {"version": str(version.pk)},
            tenant=endpoint.tenant_id,
            idempotency_key=f"rag.build:{version.pk}",
        )
        audit.record(
            "rag.endpoint.reindex",
            actor=actor,
            tenant=endpoint.tenant,
            target=f"rag.endpoint:{endpoint.slug}",
            data={"version": version.number},
        )
    return version


def reindex(endpoint: RAGEndpoint, *, progress: indexing.Progress | None = None) -> IndexVersion:
    """Build a new version now, in this process, and switch to it (see :func:`indexing.build`)."""
    version = indexing.create_version(endpoint)
    return indexing.build(version, progress=progress)


def cancel_build(version: IndexVersion) -> bool:
    """Cancel a building version; its build stops at its next batch and cleans up. False if it
    was no longer building."""
    from automate_core.base import InvalidTransition

    try:
        version.transition_to("cancelled")
    except InvalidTransition:
        return False
    return True


def activate_version(version: IndexVersion, *, actor: str = "system") -> None:
    """Serve a retired version again (a rollback): switched in one transaction like a build."""
    with transaction.atomic():
        indexing.switch(version)
        audit.record(
            "rag.endpoint.activate",
            actor=actor,
            tenant=version.tenant,
            target=f"rag.endpoint:{version.endpoint.slug}",
            data={"version": version.number},
        )


# -- sources and documents -----------------------------------------------------------------------


def queue_sync(source: KnowledgeSource, *, actor: str = "system") -> Any:
    """Enqueue a sync of ``source`` (``rag.sync``) in the caller's transaction."""
    with transaction.atomic():
        KnowledgeSource.objects.filter(pk=source.pk).update(
            sync_status=KnowledgeSource.SyncStatus.QUEUED
        )
        job = store.enqueue("rag.sync", {"source": str(source.pk)}, tenant=source.tenant_id)
        audit.record(
            "rag.source.sync", actor=actor, tenant=source.tenant, target=f"rag.source:{source.slug}"
        )
    return job


def push_document(
    source: KnowledgeSource,
    *,
    external_id: str,
    data: bytes,
    content_type: str = "",
    title: str = "",
    metadata: dict[str, Any] | None = None,
) -> tuple[Document, str]:
    """Store a pushed or uploaded document now and enqueue its indexing.

    Returns the Document and ``created``/``updated``/``unchanged``/``failed``; a document that
    fails to parse is stored as failed with the reason (and answered as such), never dropped.
    Only sources of a type that accepts pushes (``api``, ``upload``) take documents.
    """
    from rag.sources import adapter_class
    from rag.sync import Item, store_document

    if not adapter_class(source.type).accepts_pushes:
        raise InvalidInputError(
            f"Source {source.slug!r} is a {source.type!r} source; documents are pushed to "
            "'api' or 'upload' sources.",
            details={"source": source.slug, "type": source.type},
        )
    if not external_id or len(external_id) > 1000:
        raise InvalidInputError("external_id must be 1 to 1000 characters")
    limit = int(rag_settings.MAX_DOCUMENT_BYTES)
    if len(data) > limit:
        raise InvalidInputError(f"the document is larger than {limit} bytes")
    item = Item(
        external_id=external_id,
        data=data,
        content_type=content_type,
        title=title,
        metadata=metadata or {},
        keep_raw=True,
    )
    with transaction.atomic():
        document, outcome = store_document(source, item)
        if outcome != "unchanged":
            _enqueue_index(source, [document.pk])
    return document, outcome


def delete_document(source: KnowledgeSource, external_id: str) -> bool:
    """Delete a pushed document (its chunks leave every index version at once)."""
    from rag.sync import delete_documents

    with transaction.atomic():
        removed = delete_documents(source, [external_id])
        if removed:
            _enqueue_index(source, removed)
    return bool(removed)


def _enqueue_index(source: KnowledgeSource, document_ids: list[Any]) -> None:
    store.enqueue(
        "rag.sync",
        {"source": str(source.pk), "documents": [str(pk) for pk in document_ids]},
        tenant=source.tenant_id,
    )
