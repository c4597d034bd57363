"""Writing index versions: build beside the live one, switch in one transaction, keep it current.

What is guaranteed:

- :func:`reconcile` makes a version's chunks match the endpoint's current documents (chunks of
  changed or deleted documents go, documents without chunks of their current content hash are
  chunked, embedded through the cache and written). It is idempotent and works in batches that
  each commit on their own, so an interrupted build resumes where it stopped.
- :func:`build` fills a new ``building`` version, gives it its own partial HNSW index
  (``WHERE index_version_id = <id>``, so a query walks only its own version's graph), catches up
  with documents that changed meanwhile, then :func:`switch`\\ es: in one transaction the version
  goes ``building -> live`` (a compare-and-set, so a cancelled build can never go live), the old
  live version goes ``retired`` and the endpoint points at the new one.
- A build that fails or is cancelled never touches the live version: its rows and its graph are
  dropped and the version is left ``failed`` (with the error) or ``cancelled``.
- :func:`prune` keeps ``INDEX_RETENTION`` retired versions per endpoint and drops the rest.

Chunks are written with ``COPY``; their BM25 postings follow in the same transaction
(:mod:`rag.bm25`).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from django.db import connection, transaction
from django.db.models import Exists, Max, OuterRef
from django.utils import timezone

from automate_core.base import InvalidTransition
from automate_core.errors import ConflictError
from rag import bm25
from rag.chunking import chunk_blocks
from rag.conf import rag_settings
from rag.embeddings import EmbedStats, embed_documents
from rag.errors import BuildCancelled
from rag.models import Chunk, Document, IndexVersion, KnowledgeSource, RAGEndpoint
from rag.parsing import Block

logger = logging.getLogger("automate.rag")

#: Called with progress as documents are indexed, then as keyword lists are packed:
#: {"phase", "total", "done"}.
Progress = Callable[[dict[str, Any]], None]
#: Called inside each batch's transaction (an outbox handler records its progress there).
Checkpoint = Callable[[dict[str, Any]], None]

_CHUNK_COLUMNS = (
    "tenant_id",
    "index_version_id",
    "document_id",
    "position",
    "title",
    "text",
    "token_count",
    "content_hash",
    "document_hash",
    "metadata",
    "embedding",
)


@dataclass
class IndexReport:
    documents: int = 0
    chunks: int = 0
    embedded: int = 0
    cached: int = 0
    removed_chunks: int = 0

    def add(self, other: IndexReport) -> None:
        for name, value in asdict(other).items():
            setattr(self, name, getattr(self, name) + value)


# -- versions ----------------------------------------------------------------------------------


def create_version(endpoint: RAGEndpoint, *, allow_concurrent: bool = False) -> IndexVersion:
    """A new ``building`` version numbered after the endpoint's last one.

    Refuses (ConflictError) while another build of the endpoint is running, unless
    ``allow_concurrent``.
    """
    with transaction.atomic():
        locked = RAGEndpoint.objects.select_for_update().get(pk=endpoint.pk)
        building = locked.versions.filter(status="building").first()
        if building is not None and not allow_concurrent:
            raise ConflictError(
                f"Version {building.number} of {locked.slug!r} is still building; cancel it or "
                "wait for it to finish.",
                details={"version": str(building.pk)},
            )
        last = locked.versions.aggregate(n=Max("number"))["n"] or 0
        tokens, overlap = locked.chunking
        return IndexVersion.objects.create(
            tenant_id=locked.tenant_id,
            endpoint=locked,
            number=last + 1,
            embedding_model_id=locked.embedding_model_id,
            chunk_tokens=tokens,
            chunk_overlap=overlap,
        )


def _still_building(version: IndexVersion) -> bool:
    return IndexVersion.objects.filter(pk=version.pk, status="building").exists()


def build(
    version: IndexVersion,
    *,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
) -> IndexVersion:
    """Fill ``version`` and switch the endpoint to it (see the module docstring).

    Returns the version, ``live`` on success, ``failed`` or ``cancelled`` otherwise; the live
    version is untouched in the latter cases. Exceptions that mean "another worker owns this
    job now" (outbox LeaseLost) propagate without marking anything.
    """
    from automate_core.outbox.store import LeaseLost

    keep_going = lambda: _still_building(version)  # noqa: E731
    try:
        report = reconcile(
            version, progress=progress, checkpoint=checkpoint, should_continue=keep_going
        )
        if not keep_going():
            raise BuildCancelled()
        create_vector_index(version)
        # Documents that changed while the graph was built.
        report.add(reconcile(version, checkpoint=checkpoint, should_continue=keep_going))
        switch(version, report=report)
        analyze()
    except LeaseLost:
        raise
    except (BuildCancelled, InvalidTransition):
        version.refresh_from_db()
        logger.info(
            "index build %s of %s stopped: %s", version.number, version.endpoint_id, version.status
        )
        discard(version)
    except Exception as exc:
        logger.exception("index build %s of %s failed", version.number, version.endpoint_id)
        discard(version)
        try:
            version.refresh_from_db()
            version.transition_to("failed")
            IndexVersion.objects.filter(pk=version.pk).update(error=f"{type(exc).__name__}: {exc}")
        except InvalidTransition:
            pass  # cancelled meanwhile: that status stands
    version.refresh_from_db()
    return version


def switch(version: IndexVersion, *, report: IndexReport | None = None) -> None:
    """Make ``version`` the endpoint's live version, in one transaction (see module docstring)."""
    with transaction.atomic():
        endpoint = RAGEndpoint.objects.select_for_update().get(pk=version.endpoint_id)
        version.refresh_from_db()
        previous = endpoint.live_version
        version.transition_to("live")
        if previous is not None and previous.pk != version.pk:
            previous.transition_to("retired")
        now = timezone.now()
        counts = {
            "documents": Chunk.objects.filter(index_version=version)
            .values("document_id")
            .distinct()
            .count(),
            "chunks": Chunk.objects.filter(index_version=version).count(),
        }
        stats = {**(version.stats or {}), **counts}
        if report is not None:
            stats.update(embedded=report.embedded, cached=report.cached)
        IndexVersion.objects.filter(pk=version.pk).update(
            stats=stats, built_at=version.built_at or now, activated_at=now
        )
        RAGEndpoint.objects.filter(pk=endpoint.pk).update(live_version=version, updated_at=now)
    prune(endpoint)


def analyze() -> None:
    """Refresh the planner's statistics of the chunk and posting tables after a build, so it
    knows the new version's size when choosing between its graph and an index scan."""
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE rag_chunk, rag_keywordposting")


def discard(version: IndexVersion) -> None:
    """Drop a version's graph and chunks (its row stays, with its status and error)."""
    drop_vector_index(version)
    deleted = Chunk.objects.filter(index_version=version).delete()[0]
    IndexVersion.objects.filter(pk=version.pk).update(has_vector_index=False)
    if deleted:
        logger.info("dropped %d chunks of index version %s", deleted, version.pk)


def prune(endpoint: RAGEndpoint) -> list[IndexVersion]:
    """Drop retired versions beyond ``INDEX_RETENTION`` (newest kept), and the rows of failed or
    cancelled builds beyond the same number. Returns the versions removed."""
    keep = int(rag_settings.INDEX_RETENTION)
    removed: list[IndexVersion] = []
    for statuses in (("retired",), ("failed", "cancelled")):
        old = IndexVersion.objects.filter(endpoint=endpoint, status__in=statuses).order_by(
            "-number"
        )[keep:]
        for version in list(old):
            discard(version)
            version.delete()
            removed.append(version)
    return removed


# -- the HNSW graph of a version ---------------------------------------------------------------


def create_vector_index(version: IndexVersion) -> None:
    """Build the version's partial HNSW index (cosine). Outside a transaction it is built
    ``CONCURRENTLY``, so writes to other versions go on meanwhile."""
    m, ef = int(rag_settings.HNSW_M), int(rag_settings.HNSW_EF_CONSTRUCTION)
    memory = str(rag_settings.HNSW_BUILD_MEMORY)
    name = version.vector_index_name
    # The name and the uuid literal come from the version's own uuid, never from input.
    definition = (
        f"{name} ON rag_chunk USING hnsw (embedding vector_cosine_ops) "
        f"WITH (m = {m}, ef_construction = {ef}) WHERE index_version_id = '{version.pk}'::uuid"
    )
    with connection.cursor() as cursor:
        if connection.in_atomic_block:
            # Rows written earlier in this transaction have deferred foreign-key checks
            # pending, which CREATE INDEX refuses to run beside: run them now.
            cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [memory])
            cursor.execute(f"CREATE INDEX IF NOT EXISTS {definition}")
            cursor.execute("SET CONSTRAINTS ALL DEFERRED")
        else:
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, false)", [memory])
            try:
                # A failed concurrent build leaves an INVALID index behind: start clean.
                cursor.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
                cursor.execute(f"CREATE INDEX CONCURRENTLY {definition}")
            finally:
                cursor.execute("RESET maintenance_work_mem")
    IndexVersion.objects.filter(pk=version.pk).update(has_vector_index=True)


def drop_vector_index(version: IndexVersion) -> None:
    concurrently = "" if connection.in_atomic_block else "CONCURRENTLY "
    with connection.cursor() as cursor:
        cursor.execute(f"DROP INDEX {concurrently}IF EXISTS {version.vector_index_name}")


# -- keeping chunks in line with documents -----------------------------------------------------


def _wanted_documents(version: IndexVersion) -> Any:
    sources = KnowledgeSource.objects.filter(endpoints=version.endpoint_id).values("pk")
    return Document.objects.filter(
        tenant_id=version.tenant_id, source__in=sources, status=Document.Status.OK
    )


def reconcile(
    version: IndexVersion,
    *,
    document_ids: Sequence[Any] | None = None,
    progress: Progress | None = None,
    checkpoint: Checkpoint | None = None,
    should_continue: Callable[[], bool] | None = None,
) -> IndexReport:
    """Bring ``version``'s chunks in line with the documents (all, or ``document_ids``)."""
    report = IndexReport()
    wanted = _wanted_documents(version)
    chunks = Chunk.objects.filter(index_version=version)
    if document_ids is not None:
        chunks = chunks.filter(document_id__in=document_ids)
        wanted = wanted.filter(pk__in=document_ids)
    current = wanted.filter(pk=OuterRef("document_id"), content_hash=OuterRef("document_hash"))
    with transaction.atomic():
        report.removed_chunks = chunks.exclude(Exists(current)).delete()[0]
    indexed = Chunk.objects.filter(
        index_version=version, document_id=OuterRef("pk"), document_hash=OuterRef("content_hash")
    )
    pending = list(wanted.exclude(Exists(indexed)).order_by("pk").values_list("pk", flat=True))
    size = max(1, int(rag_settings.INDEX_BATCH_DOCUMENTS))
    state = {"phase": "index", "total": len(pending), "done": 0}
    if progress:
        progress(dict(state))
    for start in range(0, len(pending), size):
        if should_continue is not None and not should_continue():
            raise BuildCancelled()
        batch = pending[start : start + size]
        # Embedded before the batch's transaction opens: what a metered provider charged (its
        # usage record, a budget refusal) and the vectors it returned (cached) stay committed
        # when the batch fails, so a retry does not pay for them again.
        embedded = _embed_documents(version, batch)
        with transaction.atomic():
            report.add(_write_documents(version, batch, embedded))
            state["done"] = min(len(pending), start + size)
            if checkpoint:
                checkpoint(dict(state))
        if progress:
            progress(dict(state))
    # After the batches' transactions: a long list is packed once, with all its new postings.
    bm25.pack(version.pk, progress=_pack_progress(progress))
    return report


def _pack_progress(progress: Progress | None) -> Callable[[int, int], None] | None:
    if progress is None:
        return None
    return lambda done, total: progress({"phase": "pack", "total": total, "done": done})


def _chunk_metadata(document: Document, source: KnowledgeSource) -> dict[str, Any]:
    return {
        **(source.metadata or {}),
        **(document.metadata or {}),
        "source": source.slug,
        "document_id": str(document.pk),
        "external_id": document.external_id,
        "content_type": document.content_type,
    }


@dataclass
class _Embedded:
    """The chunks of some documents with their vectors, ready to be written."""

    documents: list[Document]
    rows: list[tuple[Document, Any, dict[str, Any]]]
    vectors: list[list[float]]
    stats: EmbedStats


def _embed_documents(version: IndexVersion, document_ids: Sequence[Any]) -> _Embedded:
    """Chunk and embed the given documents (through the cache) for ``version``."""
    documents = list(
        Document.objects.filter(pk__in=document_ids, status=Document.Status.OK).select_related(
            "source"
        )
    )
    rows: list[tuple[Document, Any, dict[str, Any]]] = []
    for document in documents:
        blocks = [Block.from_json(b) for b in document.blocks or []]
        drafts = chunk_blocks(
            blocks,
            title=document.title,
            max_tokens=version.chunk_tokens,
            overlap=version.chunk_overlap,
        )
        base = _chunk_metadata(document, document.source)
        for draft in drafts:
            metadata = {**base, "headings": list(draft.headings)}
            if draft.page is not None:
                metadata["page"] = draft.page
            rows.append((document, draft, metadata))
    stats = EmbedStats()
    vectors = embed_documents(
        version.embedding_model, [draft.embedding_input for _, draft, _ in rows], stats=stats
    )
    return _Embedded(documents=documents, rows=rows, vectors=vectors, stats=stats)


def _write_documents(
    version: IndexVersion, document_ids: Sequence[Any], embedded: _Embedded
) -> IndexReport:
    """Write embedded documents into ``version`` (call inside the batch's transaction)."""
    report = IndexReport()
    # Replace whatever an older content of these documents left in the version.
    Chunk.objects.filter(index_version=version, document_id__in=document_ids).delete()
    records = [
        (
            version.tenant_id,
            version.pk,
            document.pk,
            draft.position,
            draft.title[:1000],
            draft.text,
            draft.token_count,
            draft.content_hash,
            document.content_hash,
            metadata,
            vector,
        )
        for (document, draft, metadata), vector in zip(embedded.rows, embedded.vectors, strict=True)
    ]
    write_chunks(records)
    report.documents = len(embedded.documents)
    report.chunks = len(records)
    report.embedded, report.cached = embedded.stats.embedded, embedded.stats.cached
    return report


def write_chunks(records: Sequence[tuple[Any, ...]]) -> None:
    """Insert chunk rows (tuples in ``_CHUNK_COLUMNS`` order) with COPY, then their BM25
    postings (:func:`rag.bm25.index_chunks`)."""
    if not records:
        return
    columns = ", ".join(("id", *_CHUNK_COLUMNS))
    written: dict[Any, list[uuid.UUID]] = {}
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy(f"COPY rag_chunk ({columns}) FROM STDIN") as copy,
    ):
        for record in records:
            *head, metadata, vector = record
            # float32 values: 9 significant digits round-trip exactly, in half of repr's text.
            vector_text = "[" + ",".join([format(x, ".9g") for x in vector]) + "]"
            chunk_id = uuid.uuid4()
            written.setdefault(head[1], []).append(chunk_id)
            copy.write_row([chunk_id, *head, json.dumps(metadata), vector_text])
    for version_id, chunk_ids in written.items():
        bm25.index_chunks(version_id, chunk_ids)


def stale_documents(version: IndexVersion) -> int:
    """How many of the endpoint's documents the version does not reflect yet."""
    indexed = Chunk.objects.filter(
        index_version=version, document_id=OuterRef("pk"), document_hash=OuterRef("content_hash")
    )
    return _wanted_documents(version).exclude(Exists(indexed)).count()
