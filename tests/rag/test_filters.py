"""Metadata filters: SQL and Python agree, and filtered queries stay complete under HNSW."""

from __future__ import annotations

import random

import pytest
from django.db import connection, transaction

from rag import indexing, search
from rag.errors import InvalidFilter
from rag.filters import parse_filters
from rag.models import Document, IndexVersion
from rag.search import RetrievalConfig

from .conftest import configure_rag
from .embedders import hash_vector
from .factories import make_endpoint, make_source

pytestmark = pytest.mark.django_db


def _version_with_chunks(tenant, metadatas: list[dict], *, vectors=None) -> IndexVersion:
    """A live version whose chunks carry ``metadatas``, written straight to the index."""
    source = make_source(tenant)
    endpoint = make_endpoint(tenant, source)
    document = Document.objects.create(
        tenant=tenant, source=source, external_id="bulk", content_hash="h"
    )
    version = indexing.create_version(endpoint)
    vectors = vectors or [hash_vector(f"chunk {i}") for i in range(len(metadatas))]
    indexing.write_chunks(
        [
            (tenant.pk, version.pk, document.pk, i, "", f"chunk {i}", 2, f"c{i}", "h", meta, vec)
            for i, (meta, vec) in enumerate(zip(metadatas, vectors, strict=True))
        ]
    )
    indexing.create_vector_index(version)
    indexing.switch(version)
    indexing.analyze()
    version.refresh_from_db()
    return version


def _sql_ids(version: IndexVersion, filters: dict) -> set[int]:
    where, params = parse_filters(filters).to_sql("metadata")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM rag_chunk WHERE index_version_id = %s AND {where}",  # noqa: S608 -- the filter's own SQL, values bound
            [version.pk, *params],
        )
        return {row[0] for row in cursor.fetchall()}


METADATA_VALUES = [None, True, False, 0, 1, 1.0, 2.5, -3, "a", "b", "B", "é", "10", "9"]


def _random_metadata(rng: random.Random) -> dict:
    meta = {}
    for key in ("k", "n", "tags"):
        roll = rng.random()
        if roll < 0.2:
            continue
        if key == "tags" and roll < 0.6:
            meta[key] = rng.sample(["a", "b", "c", 1], rng.randint(0, 3))
        else:
            meta[key] = rng.choice(METADATA_VALUES)
    if rng.random() < 0.3:
        meta["nested"] = {"x": rng.choice(METADATA_VALUES)}
    return meta


def _random_filter(rng: random.Random) -> dict:
    key = rng.choice(["k", "n", "tags", "nested.x", "missing"])
    op = rng.choice(["$eq", "$ne", "$in", "$nin", "$gt", "$gte", "$lt", "$lte", "$exists"])
    if op in ("$in", "$nin"):
        value = rng.sample([v for v in METADATA_VALUES if v is not None], rng.randint(0, 3))
    elif op == "$exists":
        value = rng.random() < 0.5
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        value = rng.choice([0, 1, 2.5, "a", "b", "9"])
    else:
        value = rng.choice(METADATA_VALUES)
    return {key: {op: value}}


def test_sql_and_python_filters_agree_on_random_metadata(tenant):
    rng = random.Random(7)
    metadatas = [_random_metadata(rng) for _ in range(120)]
    version = _version_with_chunks(tenant, metadatas)
    ids = dict(version.chunks.order_by("position").values_list("position", "pk"))
    for _ in range(300):
        filters = _random_filter(rng)
        if rng.random() < 0.3:
            filters.update(_random_filter(rng))
        flt = parse_filters(filters)
        expected = {ids[i] for i, meta in enumerate(metadatas) if flt.matches(meta)}
        assert _sql_ids(version, filters) == expected, filters


def test_equality_matches_a_value_inside_a_list():
    flt = parse_filters({"tags": "billing"})
    assert flt.matches({"tags": ["billing", "refunds"]})
    assert not flt.matches({"tags": ["shipping"]})


@pytest.mark.parametrize(
    "filters",
    [
        {"k": {"$regex": ".*"}},
        {"bad key!": 1},
        {"k": {"$in": "a"}},
        {"k": {"$gt": True}},
        {"k": {"nested": "object"}},
        {"k": {}},
        ["not", "an", "object"],
    ],
)
def test_invalid_filters_are_refused_with_a_reason(filters):
    with pytest.raises(InvalidFilter):
        parse_filters(filters)


def _raw_hnsw(version, vector, where, params, limit, ef=40) -> int:
    """What plain pgvector gives: the HNSW walk, then the filter, with the default ef_search."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(f"SET LOCAL hnsw.ef_search = {ef}")
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        literal = "[" + ",".join(map(str, vector)) + "]"
        cursor.execute(
            "EXPLAIN SELECT id FROM rag_chunk WHERE index_version_id = "  # noqa: S608 -- a uuid, filter SQL
            f"'{version.pk}'::uuid AND {where} ORDER BY embedding <=> %s::vector LIMIT %s",
            [*params, literal, limit],
        )
        plan = "\n".join(r[0] for r in cursor.fetchall())
        assert version.vector_index_name in plan, plan
        cursor.execute(
            "SELECT id FROM rag_chunk WHERE index_version_id = "  # noqa: S608 -- a uuid, filter SQL
            f"'{version.pk}'::uuid AND {where} ORDER BY embedding <=> %s::vector LIMIT %s",
            [*params, literal, limit],
        )
        return len(cursor.fetchall())


def test_a_filtered_query_returns_top_k_whenever_that_many_chunks_match(tenant, settings):
    """1% of 3000 chunks match a range filter (which no index serves, so the planner walks the
    graph): HNSW alone (ef_search 40) visits about 40 chunks and keeps the few that match. Our
    search raises ef_search, sees the graph come back short and answers exactly, so all 25
    requested come back, and they are the 25 nearest matching ones."""
    configure_rag(settings, EXACT_SEARCH_MAX_ROWS=0)  # force the HNSW path
    version = _version_with_chunks(tenant, [{"group": i % 100} for i in range(3000)])
    query = hash_vector("a query")
    flt = parse_filters({"group": {"$lt": 1}})
    where, params = flt.to_sql("metadata")
    assert _raw_hnsw(version, query, where, params, 25) < 25  # the problem is real

    hits, how = search.vector_search_pg(version, query, flt, 25, RetrievalConfig())
    exact, _ = search.vector_search_pg(version, query, flt, 25, RetrievalConfig(), exact=True)
    assert len(hits) == 25
    assert [h[0] for h in hits] == [h[0] for h in exact]
    assert how["vector"] == "exact" and how["reason"] == "hnsw returned too few"


def test_an_equality_filter_returns_top_k_under_hnsw_too(tenant, settings):
    configure_rag(settings, EXACT_SEARCH_MAX_ROWS=0)
    version = _version_with_chunks(tenant, [{"group": i % 100} for i in range(3000)])
    query = hash_vector("a query")
    flt = parse_filters({"group": 7})
    hits, _ = search.vector_search_pg(version, query, flt, 25, RetrievalConfig())
    exact, _ = search.vector_search_pg(version, query, flt, 25, RetrievalConfig(), exact=True)
    assert [h[0] for h in hits] == [h[0] for h in exact] and len(hits) == 25


def test_a_filter_matching_fewer_chunks_than_top_k_returns_all_of_them(tenant, settings):
    configure_rag(settings, EXACT_SEARCH_MAX_ROWS=0)
    version = _version_with_chunks(tenant, [{"group": i % 100} for i in range(1000)])
    hits, _ = search.vector_search_pg(
        version, hash_vector("q"), parse_filters({"group": 3}), 25, RetrievalConfig()
    )
    assert len(hits) == 10


def test_a_selective_filter_is_answered_by_exact_search(tenant):
    version = _version_with_chunks(tenant, [{"group": i % 100} for i in range(1000)])
    hits, how = search.vector_search_pg(
        version, hash_vector("q"), parse_filters({"group": 3}), 5, RetrievalConfig()
    )
    assert len(hits) == 5
    assert how == {"vector": "exact", "reason": "selective filter", "matching": 10}


def test_a_broad_filter_stays_on_the_graph_with_a_raised_ef_search(tenant, settings):
    configure_rag(settings, EXACT_SEARCH_MAX_ROWS=100)
    version = _version_with_chunks(tenant, [{"group": i % 2} for i in range(2000)])
    hits, how = search.vector_search_pg(
        version, hash_vector("q"), parse_filters({"group": 1}), 10, RetrievalConfig()
    )
    assert len(hits) == 10
    assert how["vector"] == "hnsw" and how["ef_search"] >= 100


def test_an_unfiltered_query_walks_the_graph(tenant):
    version = _version_with_chunks(tenant, [{} for _ in range(500)])
    hits, how = search.vector_search_pg(
        version, hash_vector("q"), parse_filters({}), 10, RetrievalConfig(ef_search=64)
    )
    assert len(hits) == 10
    assert how == {"vector": "hnsw", "ef_search": 64}


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_ef_search_is_set_once_per_connection_and_follows_the_config(
    tenant,
):
    from rag.pg_settings import session_setting

    def _ef_search(value: int):
        return session_setting("hnsw.ef_search", str(value))

    def current() -> str:
        with connection.cursor() as cursor:
            cursor.execute("SHOW hnsw.ef_search")
            return cursor.fetchone()[0]

    with _ef_search(77):
        assert current() == "77"
    with _ef_search(77):
        pass
    assert current() == "77"  # still set for the session
    with _ef_search(120):
        assert current() == "120"
