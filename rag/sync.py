"""Turning a source's items into Documents, and Documents into the endpoints' live indexes.

What is guaranteed:

- :func:`store_document` is incremental by content hash: an item whose bytes, title and
  metadata (and its source's metadata) are unchanged is not parsed, chunked or embedded again.
- An item that fails to parse is stored with ``status=failed`` and the parser's reason; it is
  counted in the sync report and shown in the admin and the health check, never dropped.
- :func:`sync_source` lists the source's items (through its adapter, see :mod:`rag.sources`),
  stores each, removes documents the source no longer lists (when the listing is complete), and
  then brings every endpoint that uses the source up to date: the changed documents are
  re-indexed into the live version in place, and an endpoint with no version yet gets its first
  build. Progress is written to the source's ``sync_progress`` as it goes.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from rag import indexing
from rag.errors import DocumentParseError, InvalidSourceConfig
from rag.models import Document, KnowledgeSource, RAGEndpoint
from rag.parsing import parse

logger = logging.getLogger("automate.rag")

#: Called with {"phase", "total", "done", "failed"} as a sync advances.
Progress = Callable[[dict[str, Any]], None]


@dataclass(frozen=True)
class Item:
    """One thing a source lists: bytes to parse (or text), plus what to remember about it."""

    external_id: str
    data: bytes
    content_type: str = ""
    title: str = ""
    metadata: dict[str, Any] = field(default_factory=dict)
    #: Keep the bytes on the Document (uploads and pushes; fetched pages can be fetched again).
    keep_raw: bool = False


@dataclass(frozen=True)
class ItemFailure:
    """An item the source could not even fetch: recorded as a failed Document."""

    external_id: str
    error: str
    title: str = ""


@dataclass(frozen=True)
class ItemUnchanged:
    """An item the source knows has not changed (a sitemap's lastmod), so it is not fetched."""

    external_id: str


@dataclass
class SyncReport:
    listed: int = 0
    created: int = 0
    updated: int = 0
    unchanged: int = 0
    failed: int = 0
    deleted: int = 0
    indexed: indexing.IndexReport = field(default_factory=indexing.IndexReport)
    builds: list[str] = field(default_factory=list)
    changed_documents: list[Any] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "listed": self.listed,
            "created": self.created,
            "updated": self.updated,
            "unchanged": self.unchanged,
            "failed": self.failed,
            "deleted": self.deleted,
            "chunks": self.indexed.chunks,
            "embedded": self.indexed.embedded,
            "cached": self.indexed.cached,
            "builds": self.builds,
        }


def document_hash(source: KnowledgeSource, item: Item) -> str:
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(item.data).digest())
    digest.update(
        json.dumps(
            [item.title, item.content_type, item.metadata, source.metadata],
            sort_keys=True,
            default=str,
        ).encode()
    )
    return digest.hexdigest()


def _validate_metadata(metadata: Any) -> dict[str, Any]:
    if not isinstance(metadata, dict) or not all(isinstance(k, str) for k in metadata):
        raise InvalidSourceConfig("document metadata must be a JSON object")
    try:
        json.dumps(metadata)
    except (TypeError, ValueError) as exc:
        raise InvalidSourceConfig(f"document metadata is not JSON: {exc}") from exc
    return metadata


def store_document(source: KnowledgeSource, item: Item) -> tuple[Document, str]:
    """Create or update the Document for ``item``; returns it and what happened:
    ``created``, ``updated``, ``unchanged`` or ``failed`` (parse error recorded on it)."""
    metadata = _validate_metadata(item.metadata)
    content_hash = document_hash(source, item)
    existing = Document.objects.filter(source=source, external_id=item.external_id).first()
    if existing is not None and existing.content_hash == content_hash:
        return existing, "unchanged"
    document = existing or Document(
        tenant_id=source.tenant_id, source=source, external_id=item.external_id
    )
    document.content_hash = content_hash
    document.content_type = item.content_type[:200]
    document.metadata = metadata
    document.raw = item.data if item.keep_raw else None
    try:
        parsed = parse(item.data, content_type=item.content_type, name=item.external_id)
    except DocumentParseError as exc:
        document.status, document.error = Document.Status.FAILED, exc.message
        document.text, document.blocks = "", []
        document.title = (item.title or item.external_id)[:500]
        outcome = "failed"
    else:
        document.status, document.error = Document.Status.OK, ""
        document.text = parsed.text
        document.blocks = [b.to_json() for b in parsed.blocks]
        document.title = (item.title or parsed.title or item.external_id)[:500]
        document.content_type = document.content_type or parsed.format
        outcome = "created" if existing is None else "updated"
    document.save()
    return document, outcome


def record_failure(source: KnowledgeSource, failure: ItemFailure) -> Document:
    """An item that could not be fetched: a failed Document carrying the reason."""
    document, _ = Document.objects.update_or_create(
        source=source,
        external_id=failure.external_id,
        defaults={
            "tenant_id": source.tenant_id,
            "status": Document.Status.FAILED,
            "error": failure.error[:2000],
            "title": (failure.title or failure.external_id)[:500],
            # A later successful fetch must not be mistaken for "unchanged".
            "content_hash": "",
        },
    )
    return document


def delete_documents(source: KnowledgeSource, external_ids: Iterable[str]) -> list[Any]:
    """Delete documents by external id (their chunks go with them); returns their ids."""
    docs = Document.objects.filter(source=source, external_id__in=list(external_ids))
    ids = list(docs.values_list("pk", flat=True))
    docs.delete()
    return ids


# -- indexing what changed -------------------------------------------------------------------


def index_changes(
    source: KnowledgeSource,
    document_ids: list[Any] | None,
    *,
    progress: Progress | None = None,
    checkpoint: indexing.Checkpoint | None = None,
) -> tuple[indexing.IndexReport, list[str]]:
    """Apply changed documents (None: all of them) to every endpoint using ``source``.

    Live versions are reconciled in place; an endpoint with neither a live nor a building
    version gets its first version built now. Returns what was indexed and the versions built.
    """
    report = indexing.IndexReport()
    builds: list[str] = []
    for endpoint in RAGEndpoint.objects.filter(sources=source, tenant_id=source.tenant_id):
        live = endpoint.live_version
        if live is not None:
            report.add(
                indexing.reconcile(
                    live, document_ids=document_ids, progress=progress, checkpoint=checkpoint
                )
            )
        elif not endpoint.versions.filter(status="building").exists():
            version = indexing.build(
                indexing.create_version(endpoint), progress=progress, checkpoint=checkpoint
            )
            builds.append(f"{endpoint.slug} v{version.number}: {version.status}")
    return report, builds


def _set_progress(source: KnowledgeSource, **values: Any) -> None:
    KnowledgeSource.objects.filter(pk=source.pk).update(**values)
    for name, value in values.items():
        setattr(source, name, value)


def sync_source(
    source: KnowledgeSource,
    *,
    progress: Progress | None = None,
    checkpoint: indexing.Checkpoint | None = None,
) -> SyncReport:
    """List, store and index the source's items now (see the module docstring).

    Each item is stored in its own transaction, so progress is visible while it runs and an
    interrupted sync keeps what it did (the next one finds those items unchanged).
    """
    from rag.sources import adapter_for

    report = SyncReport()
    adapter = adapter_for(source)
    state: dict[str, Any] = {"phase": "fetch", "total": None, "done": 0, "failed": 0}

    def advance(**changes: Any) -> None:
        state.update(changes)
        _set_progress(source, sync_progress=dict(state))
        if progress:
            progress(dict(state))

    _set_progress(source, sync_status=KnowledgeSource.SyncStatus.RUNNING, last_error="")
    try:
        listing = adapter.list_items()
        advance(total=listing.total)
        seen: set[str] = set()
        for entry in listing.items:
            report.listed += 1
            seen.add(entry.external_id)
            with transaction.atomic():
                if isinstance(entry, ItemUnchanged):
                    document, outcome = None, "unchanged"
                elif isinstance(entry, ItemFailure):
                    document, outcome = record_failure(source, entry), "failed"
                else:
                    document, outcome = store_document(source, entry)
                if checkpoint:
                    checkpoint(dict(state))
            setattr(report, outcome, getattr(report, outcome) + 1)
            if document is not None and outcome in ("created", "updated", "failed"):
                report.changed_documents.append(document.pk)
            advance(done=report.listed, failed=report.failed)
        if listing.complete:
            gone = set(source.get_documents().values_list("external_id", flat=True)) - seen
            removed = delete_documents(source, gone)
            report.deleted = len(removed)
            report.changed_documents.extend(removed)
        advance(phase="index", total=None, done=0)

        def on_index(p: dict[str, Any]) -> None:
            advance(total=p["total"], done=p["done"])

        indexed, builds = index_changes(
            source,
            report.changed_documents if listing.incremental else None,
            progress=on_index,
            checkpoint=checkpoint,
        )
        report.indexed, report.builds = indexed, builds
    except Exception as exc:
        _set_progress(
            source,
            sync_status=KnowledgeSource.SyncStatus.FAILED,
            last_error=f"{type(exc).__name__}: {exc}"[:4000],
        )
        raise
    _set_progress(
        source,
        sync_status=KnowledgeSource.SyncStatus.SUCCEEDED,
        last_synced_at=timezone.now(),
        sync_progress={**state, "phase": "done", "report": report.to_json()},
    )
    return report
