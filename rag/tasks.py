"""Outbox handlers of the RAG app (the worker imports every app's ``tasks`` module).

``rag.sync`` and ``rag.build`` commit batch by batch (``commits=True``): each batch's
transaction records progress in the job with ``store.advance``, so a worker that lost its lease
commits nothing more, and a retry resumes from what was committed (indexing is idempotent).
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automate_core.outbox import store
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from rag import indexing, sync
from rag.models import IndexVersion, KnowledgeSource, RAGEndpoint


def _checkpoint(lease: Lease) -> indexing.Checkpoint:
    def record(progress: dict[str, Any]) -> None:
        store.advance(lease, {**(lease.payload or {}), "progress": progress})

    return record


def _finish(lease: Lease) -> None:
    with transaction.atomic():
        store.complete(lease)


@outbox_handler("rag.sync", commits=True)
def run_sync(lease: Lease) -> None:
    """Sync a source (``{"source": id}``), or index some of its stored documents
    (``{"source": id, "documents": [ids]}``, after pushes)."""
    payload = lease.payload or {}
    if lease.tenant_id is None:
        return _finish(lease)
    source = KnowledgeSource.objects.filter(pk=payload["source"], tenant_id=lease.tenant_id).first()
    if source is not None:
        if "documents" in payload:
            sync.index_changes(source, payload["documents"], checkpoint=_checkpoint(lease))
        else:
            sync.sync_source(source, checkpoint=_checkpoint(lease))
    _finish(lease)


@outbox_handler("rag.build", commits=True)
def run_build(lease: Lease) -> None:
    """Build an index version (``{"version": id}``) and switch its endpoint to it."""
    if lease.tenant_id is None:
        return _finish(lease)
    version = IndexVersion.objects.filter(
        pk=lease.payload["version"], tenant_id=lease.tenant_id
    ).first()
    if version is not None and version.status == "building":
        indexing.build(version, checkpoint=_checkpoint(lease))
    _finish(lease)


@outbox_handler("rag.first_build", commits=True)
def run_first_build(lease: Lease) -> None:
    """Build the first index of an endpoint (``{"endpoint": id}``) created over sources that
    already hold documents, unless a build was started by then (a reindex, a sync)."""
    if lease.tenant_id is None:
        return _finish(lease)
    endpoint = RAGEndpoint.objects.filter(
        pk=lease.payload["endpoint"], tenant_id=lease.tenant_id
    ).first()
    if endpoint is not None and not endpoint.versions.exists():
        indexing.build(indexing.create_version(endpoint), checkpoint=_checkpoint(lease))
    _finish(lease)


@outbox_handler("rag.sync_object")
def run_sync_object(lease: Lease) -> None:
    """Re-read one row of a model source after its save or delete, and index the change."""
    from rag.sources.django_models import ModelSource

    payload = lease.payload
    if lease.tenant_id is None:
        return
    source = KnowledgeSource.objects.filter(
        pk=payload["source"], tenant_id=lease.tenant_id, type="model"
    ).first()
    if source is None:
        return
    adapter = ModelSource(source)
    row = None if payload["deleted"] else adapter.queryset().filter(pk=payload["pk"]).first()
    if row is None:
        changed = sync.delete_documents(source, [payload["pk"]])
    else:
        document, outcome = sync.store_document(source, adapter.item(row))
        changed = [] if outcome == "unchanged" else [document.pk]
    if changed:
        sync.index_changes(source, changed)
