"""Index versions: build beside the live one, switch in one transaction, failure and cancel
leave the live version serving, retention prunes, syncs keep the live version current."""

from __future__ import annotations

import pytest
from django.db import connection

from automate_core.errors import ConflictError
from automate_core.testing.runtime import run_until_idle
from rag import indexing, services
from rag.errors import IndexNotReady
from rag.models import Chunk, IndexVersion

from .conftest import configure_rag
from .embedders import CountingEmbedder
from .factories import handbook, make_model, push

pytestmark = pytest.mark.django_db


def _index_exists(name: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1 FROM pg_indexes WHERE indexname = %s", [name])
        return cursor.fetchone() is not None


def test_a_reindex_builds_a_new_version_and_switches_to_it(tenant):
    endpoint = handbook(tenant)
    first = endpoint.live_version
    second = services.reindex(endpoint)
    endpoint.refresh_from_db()
    first.refresh_from_db()
    assert (second.number, second.status, first.status) == (2, "live", "retired")
    assert endpoint.live_version == second
    assert services.query(endpoint, "refunds").index_version["number"] == 2
    assert second.stats["chunks"] == Chunk.objects.filter(index_version=second).count() > 0


def test_each_version_has_its_own_hnsw_graph(tenant):
    endpoint = handbook(tenant)
    second = services.reindex(endpoint)
    assert _index_exists(endpoint.live_version.vector_index_name)
    assert second.vector_index_name != IndexVersion.objects.get(number=1).vector_index_name
    assert _index_exists(IndexVersion.objects.get(number=1).vector_index_name)


def test_a_reindex_reuses_cached_embeddings_for_unchanged_text(tenant):
    endpoint = handbook(tenant)
    CountingEmbedder.calls.clear()
    version = services.reindex(endpoint)
    assert CountingEmbedder.calls == []
    assert version.stats["embedded"] == 0 and version.stats["cached"] == version.stats["chunks"]


def test_a_failed_build_leaves_the_live_version_serving(tenant):
    endpoint = handbook(tenant)
    live = endpoint.live_version
    endpoint.embedding_model = make_model(tenant, provider="broken")
    endpoint.save()
    failed = services.reindex(endpoint)
    endpoint.refresh_from_db()
    assert failed.status == "failed"
    assert "provider unreachable" in failed.error
    assert endpoint.live_version == live
    assert not Chunk.objects.filter(index_version=failed).exists()
    assert not _index_exists(failed.vector_index_name)
    assert services.query(endpoint, "refunds").index_version["number"] == 1


def test_a_cancelled_build_stops_cleans_up_and_never_goes_live(tenant, settings):
    configure_rag(settings, INDEX_BATCH_DOCUMENTS=1)
    endpoint = handbook(tenant)
    live = endpoint.live_version
    version = indexing.create_version(endpoint)
    seen = []

    def cancel_after_first_batch(progress):
        seen.append(progress["done"])
        if progress["done"] == 1:
            services.cancel_build(version)

    result = indexing.build(version, progress=cancel_after_first_batch)
    endpoint.refresh_from_db()
    assert result.status == "cancelled"
    assert seen == [0, 1]  # stopped before the second document
    assert endpoint.live_version == live
    assert not Chunk.objects.filter(index_version=version).exists()


def test_a_build_cancelled_just_before_the_switch_does_not_go_live(tenant, monkeypatch):
    endpoint = handbook(tenant)
    live = endpoint.live_version
    version = indexing.create_version(endpoint)
    real = indexing.create_vector_index

    def cancel_then_index(v):
        real(v)
        services.cancel_build(v)

    monkeypatch.setattr(indexing, "create_vector_index", cancel_then_index)
    assert indexing.build(version).status == "cancelled"
    endpoint.refresh_from_db()
    assert endpoint.live_version == live


def test_only_one_build_of_an_endpoint_runs_at_a_time(tenant):
    endpoint = handbook(tenant)
    services.queue_reindex(endpoint)
    with pytest.raises(ConflictError, match="still building"):
        services.queue_reindex(endpoint)


def test_a_queued_reindex_runs_as_an_outbox_job(tenant):
    endpoint = handbook(tenant)
    version = services.queue_reindex(endpoint)
    assert version.status == "building"
    run_until_idle()
    endpoint.refresh_from_db()
    assert endpoint.live_version == version


def test_retention_keeps_the_newest_retired_versions_and_drops_the_rest(tenant, settings):
    configure_rag(settings, INDEX_RETENTION=1)
    endpoint = handbook(tenant)
    first = endpoint.live_version
    services.reindex(endpoint)
    services.reindex(endpoint)
    services.reindex(endpoint)
    assert list(IndexVersion.objects.filter(endpoint=endpoint).values_list("number", "status")) == [
        (4, "live"),
        (3, "retired"),
    ]
    assert not Chunk.objects.filter(index_version_id=first.pk).exists()
    assert not _index_exists(first.vector_index_name)


def test_a_retired_version_can_be_made_live_again(tenant):
    endpoint = handbook(tenant)
    first = endpoint.live_version
    services.reindex(endpoint)
    first.refresh_from_db()
    services.activate_version(first)
    endpoint.refresh_from_db()
    assert endpoint.live_version == first
    assert services.query(endpoint, "refunds").index_version["number"] == 1


def test_a_pushed_change_updates_the_live_version_in_place(tenant):
    endpoint = handbook(tenant)
    source = endpoint.sources.get()
    CountingEmbedder.calls.clear()
    push(source, "shipping.md", "# Shipping\n\nOrders now ship from Marseille.\n")
    run_until_idle()
    endpoint.refresh_from_db()
    assert endpoint.live_version.number == 1  # no rebuild
    texts = list(
        Chunk.objects.filter(index_version=endpoint.live_version).values_list("text", flat=True)
    )
    assert "Orders now ship from Marseille." in texts
    assert not any("Lyon" in t for t in texts)
    assert CountingEmbedder.calls == [["Shipping\n\nOrders now ship from Marseille."]]


def test_a_deleted_document_leaves_the_live_version_at_once(tenant):
    endpoint = handbook(tenant)
    source = endpoint.sources.get()
    assert services.delete_document(source, "refunds.md")
    result = services.query(endpoint, "refunded within five business days", top_k=10)
    assert "refunds.md" not in {r.document["external_id"] for r in result.results}


def test_the_first_sync_of_a_new_endpoint_builds_its_first_version(tenant):
    from .factories import make_endpoint, make_source

    source = make_source(tenant)
    endpoint = make_endpoint(tenant, source)
    with pytest.raises(IndexNotReady):
        services.query(endpoint, "refunds")
    push(source, "a.md", "# Refunds\n\nRefunds take five days.")
    run_until_idle()
    endpoint.refresh_from_db()
    assert endpoint.live_version.number == 1
    assert services.query(endpoint, "refunds").results
