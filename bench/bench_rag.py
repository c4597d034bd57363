"""RAG index on the embedded Postgres + pgvector, beside raw pgvector SQL and exact search.

One process, one database (``automate_bench_rag``, next to the development database; its RAG
tables are emptied first). N chunks of 384 dimensions are made up: vectors are drawn from 1,000
clusters shaped like real sentence embeddings, at least as hard to search (see :class:`Corpus`),
and texts are words drawn by Zipf's law from a 30,000-word vocabulary, as words of real text are
(``--uniform-words``: uniformly from 5,000 words, where every term is as common as any other and
no BM25 top-k can stop early). Measured:

* ``ingest``: our write path (:func:`rag.indexing.write_chunks`: COPY, the metadata GIN and
  b-tree indexes, the BM25 postings and their packed lists) then the version's HNSW build
  (:func:`create_vector_index`), in chunks/s; beside it raw pgvector: COPY of (id, embedding)
  into a bare table and the same HNSW build. Ratio raw / ours says what our columns and
  indexes cost.
* ``embed``: the end-to-end path with the local all-MiniLM-L6-v2 model (parse, chunk, embed,
  write) on a sample of documents: what a real sync achieves on this CPU.
* ``query``: p50/p99 over Q queries of (a) :func:`rag.services.query` in vector, keyword and
  hybrid mode (vector + BM25 + RRF + fetch + highlights), (b) raw pgvector SQL on the same
  table through the same HNSW graph with the same ef_search, (c) exact search (a sequential
  scan), (d) exact BM25 summed over every posting of the query's terms, row by row in SQL
  (:func:`rag.bm25.exhaustive_search`, the reference for the keyword side). Query vectors
  come from a bench provider that maps each query text to its vector, so no model time is counted.
  Recall@10 of (a) and (b) against (c), and the share of queries whose keyword top-10 is the
  exact BM25 top-10, in order.

Run: ``.venv/bin/python bench/bench_rag.py [--chunks 100000] [--queries 200] [--ef-search 100]``
(add ``--chunks 1000000`` for the million-chunk figures; the HNSW build then dominates).
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

#: BENCH_RAG_DB names another database, to keep a second corpus beside the first.
BENCH_DB = os.environ.get("BENCH_RAG_DB", "automate_bench_rag")
DIMENSIONS = 384


from bench.database import setup_django  # noqa: E402

setup_django(BENCH_DB)

from django.conf import settings  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test.utils import override_settings  # noqa: E402

from automate_core.tenancy.models import Tenant  # noqa: E402
from rag import indexing, services  # noqa: E402
from rag.embeddings import Embedder  # noqa: E402
from rag.filters import MetadataFilter  # noqa: E402
from rag.models import (  # noqa: E402
    Document,
    EmbeddingModel,
    IndexVersion,
    KnowledgeSource,
    RAGEndpoint,
)

QUERY_VECTORS: dict[str, list[float]] = {}


class LookupEmbedder(Embedder):
    """Bench provider: each query text maps to a vector made up in advance (no model time)."""

    name = "bench-lookup"

    def embed_documents(self, texts, context):  # type: ignore[no-untyped-def]
        return [QUERY_VECTORS[t] for t in texts]


class Corpus:
    """Unit vectors from a mixture shaped like real sentence embeddings (numpy, float32), and
    texts over a fixed vocabulary.

    Each cluster is a Gaussian whose covariance has a power-law spectrum (eigenvalue i ~ i^-0.8
    over 128 random directions) around a centre near a shared offset, as all-MiniLM-L6-v2
    embeddings of 15,000 real paragraphs measure (offset norm 0.39, within-cluster variance
    ~0.6 decaying about as 1/i). Tuned to be at least as hard for nearest-neighbour search as
    those embeddings at 1,000 vectors per cluster: local intrinsic dimensionality 34.5 against
    their 14.3, relative contrast 1.41 against their 1.44 (higher LID and lower contrast are
    harder). Isotropic noise around random centres, the earlier corpus, measured LID 92: no real
    model produces that.
    """

    RANK = 128
    SLOPE = 0.8
    WITHIN = 0.65
    BETWEEN = 0.22
    OFFSET = 0.39

    def __init__(self, seed: int = 7, centres: int = 1000) -> None:
        import numpy as np

        self.np = np
        self.seed = seed
        self.rng = random.Random(seed)
        self.nprng = np.random.default_rng(seed)
        offset = self.nprng.standard_normal(DIMENSIONS)
        offset *= self.OFFSET / np.linalg.norm(offset)
        spread = np.sqrt(self.BETWEEN / DIMENSIONS)
        self.centres = offset + self.nprng.standard_normal((centres, DIMENSIONS)) * spread
        spectrum = np.arange(1, self.RANK + 1, dtype=np.float64) ** -self.SLOPE
        self.scales = np.sqrt(spectrum / spectrum.sum() * self.WITHIN)
        self.words = [f"w{n:04d}" for n in range(5000)]

    def _basis(self, cluster: int) -> Any:
        """The cluster's principal directions, the same on every call."""
        rng = self.np.random.default_rng((self.seed, cluster))
        basis, _ = self.np.linalg.qr(rng.standard_normal((DIMENSIONS, self.RANK)))
        return basis

    def vectors(self, count: int) -> Any:
        np = self.np
        picks = self.nprng.integers(0, len(self.centres), size=count)
        out = np.empty((count, DIMENSIONS), dtype=np.float32)
        for cluster in np.unique(picks):
            rows = np.nonzero(picks == cluster)[0]
            spread = self.nprng.standard_normal((len(rows), self.RANK)) * self.scales
            out[rows] = self.centres[cluster] + spread @ self._basis(int(cluster)).T
        return out / np.linalg.norm(out, axis=1, keepdims=True)

    def text(self, words: int = 60) -> str:
        return " ".join(self.rng.choice(self.words) for _ in range(words)) + "."


class ZipfWords:
    """Texts whose words follow Zipf's law (frequency ~ 1 / rank^1.07 over 30,000 words), as
    the words of real text do: a few very common words, a long tail of rare ones."""

    def __init__(self, seed: int = 7, vocabulary: int = 30_000, exponent: float = 1.07) -> None:
        import numpy as np

        self.nprng = np.random.default_rng(seed)
        weights = 1 / np.arange(1, vocabulary + 1) ** exponent
        self.p = weights / weights.sum()
        self.words = np.array([f"z{n:05d}" for n in range(vocabulary)])

    def texts(self, count: int, words: int) -> list[str]:
        picks = self.nprng.choice(len(self.words), size=(count, words), p=self.p)
        return [" ".join(row) + "." for row in self.words[picks]]


def _percentiles(samples: list[float]) -> tuple[float, float]:
    ordered = sorted(samples)
    return statistics.median(ordered), ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'rag_chunk_hnsw_%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f"DROP INDEX IF EXISTS {name}")
        cursor.execute(
            "TRUNCATE rag_chunk, rag_embeddingcacheentry, rag_indexversion, rag_document, "
            "rag_ragendpoint_sources, rag_ragendpoint, rag_knowledgesource, rag_embeddingmodel "
            "CASCADE"
        )
        cursor.execute("DROP TABLE IF EXISTS bench_raw_vectors")


def setup_endpoint(tenant: Tenant) -> tuple[RAGEndpoint, Document]:
    source = KnowledgeSource.objects.create(tenant=tenant, name="Bench", type="api")
    model = EmbeddingModel.objects.create(
        tenant=tenant, name="Lookup", provider="bench-lookup", model_id="lookup"
    )
    endpoint = RAGEndpoint.objects.create(
        tenant=tenant,
        name="Bench",
        embedding_model=model,
        retrieval_config={"mode": "vector", "candidates": 10, "highlights": False},
    )
    endpoint.sources.set([source])
    document = Document.objects.create(
        tenant=tenant, source=source, external_id="bench", title="Bench", content_hash="h"
    )
    return endpoint, document


def kept_version(tenant: Tenant, chunks: int) -> IndexVersion | None:
    """The live version a ``--keep`` run of ``chunks`` chunks left behind, if any."""
    version = (
        IndexVersion.objects.filter(tenant=tenant, status="live", endpoint__name="Bench")
        .select_related("endpoint")
        .first()
    )
    if version is None or (version.stats or {}).get("chunks") != chunks:
        return None
    return version


def ingest_ours(
    endpoint: RAGEndpoint, document: Document, rows: list[tuple[str, Any, int]]
) -> tuple[IndexVersion, float, float]:
    version = indexing.create_version(endpoint)
    started = time.perf_counter()
    batch = 5000
    for start in range(0, len(rows), batch):
        indexing.write_chunks(
            [
                (
                    endpoint.tenant_id,
                    version.pk,
                    document.pk,
                    n,
                    "Bench",
                    text,
                    60,
                    f"c{n}",
                    "h",
                    {"group": group},
                    vector,
                )
                for n, (text, vector, group) in enumerate(rows[start : start + batch], start)
            ]
        )
    pack_keyword_lists(version)  # part of the write, as in a build
    copied = time.perf_counter() - started
    started = time.perf_counter()
    indexing.create_vector_index(version)
    built = time.perf_counter() - started
    indexing.switch(version)
    indexing.analyze()
    with connection.cursor() as cursor:
        # What autovacuum does soon after a bulk insert: the visibility map lets the posting
        # index answer without visiting the table.
        cursor.execute("VACUUM rag_keywordposting")
    version.refresh_from_db()
    return version, copied, built


def pack_keyword_lists(version: IndexVersion) -> None:
    """Pack the keyword lists a write (or a migration) left stale, as a build does."""
    from rag import bm25

    started = time.perf_counter()
    packed = bm25.pack(version.pk)
    print(f"ingest  packed {packed} keyword lists in {time.perf_counter() - started:.1f} s")


def ingest_raw(rows: list[tuple[str, Any, int]]) -> tuple[float, float]:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE bench_raw_vectors (id uuid PRIMARY KEY, embedding vector(384))"
        )
    started = time.perf_counter()
    with (
        connection.cursor() as cursor,
        cursor.cursor.copy("COPY bench_raw_vectors (id, embedding) FROM STDIN") as copy,
    ):
        for _, vector, _ in rows:
            copy.write_row([uuid.uuid4(), "[" + ",".join(format(x, ".9g") for x in vector) + "]"])
    copied = time.perf_counter() - started
    started = time.perf_counter()
    from rag.conf import rag_settings

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT set_config('maintenance_work_mem', %s, false)",
            [str(rag_settings.HNSW_BUILD_MEMORY)],
        )
        cursor.execute(
            "CREATE INDEX bench_raw_hnsw ON bench_raw_vectors USING hnsw "
            f"(embedding vector_cosine_ops) WITH (m = {int(rag_settings.HNSW_M)}, "
            f"ef_construction = {int(rag_settings.HNSW_EF_CONSTRUCTION)})"
        )
        cursor.execute("RESET maintenance_work_mem")
    return copied, time.perf_counter() - started


def raw_query(version_id: uuid.UUID, vector: list[float], exact: bool) -> list[str]:
    """One SELECT through the graph (ef_search set once for the session by the caller), or an
    exact scan (index scans off for that transaction)."""
    literal = "[" + ",".join(map(repr, vector)) + "]"
    sql = (
        f"SELECT id FROM rag_chunk WHERE index_version_id = '{version_id}'::uuid "
        "ORDER BY embedding <=> %s::vector LIMIT 10"
    )
    with connection.cursor() as cursor:
        if not exact:
            cursor.execute(sql, [literal])
            return [str(r[0]) for r in cursor.fetchall()]
        cursor.execute("BEGIN")
        cursor.execute("SET LOCAL enable_indexscan = off")
        cursor.execute(sql, [literal])
        ids = [str(r[0]) for r in cursor.fetchall()]
        cursor.execute("COMMIT")
    return ids


def query_phase(endpoint, version, texts, truth, ef: int, hybrid: bool) -> None:  # type: ignore[no-untyped-def]
    """Ours (vector mode, and hybrid once) beside raw pgvector SQL at one ef_search."""
    endpoint.retrieval_config = {
        "mode": "vector", "candidates": 10, "ef_search": ef, "highlights": False,
    }  # fmt: skip
    with connection.cursor() as cursor:  # raw SQL's session ef_search, as ours keeps it
        cursor.execute(f"SET hnsw.ef_search = {ef}")
    for text in texts[:10]:  # warm-up: caches, plans, the graph's upper layers
        services.query(endpoint, text, top_k=10)
        raw_query(version.pk, QUERY_VECTORS[text], exact=False)
    ours_ms, raw_ms, hybrid_ms, ours_recall, raw_recall = [], [], [], [], []
    for n, text in enumerate(texts):
        # The second search of a vector finds the graph's pages in shared buffers: alternate
        # which side goes first so neither gets the warm cache every time.
        if n % 2:
            raw_ids, raw = timed(raw_query, version.pk, QUERY_VECTORS[text], False)
        result, ms = timed(services.query, endpoint, text, top_k=10)
        if not n % 2:
            raw_ids, raw = timed(raw_query, version.pk, QUERY_VECTORS[text], False)
        ours_ms.append(ms)
        raw_ms.append(raw)
        ours_recall.append(len(truth[text] & {str(r.chunk_id) for r in result.results}) / 10)
        raw_recall.append(len(truth[text] & set(raw_ids)) / 10)
    rows = [("ours vector (services.query)", ours_ms), ("raw pgvector HNSW SQL", raw_ms)]
    if hybrid:
        endpoint.retrieval_config = {"mode": "hybrid", "candidates": 50, "ef_search": ef}
        for text in texts[:10]:  # warm-up, as above: the common terms' lists are kept
            services.query(endpoint, text, top_k=10)
        for text in texts:
            _, ms = timed(services.query, endpoint, text, top_k=10)
            hybrid_ms.append(ms)
        rows.insert(1, ("ours hybrid (+BM25, RRF, highlights)", hybrid_ms))
    print(f"-- ef_search {ef}")
    for label, samples in rows:
        p50, p99 = _percentiles(samples)
        print(f"query   {label:<38} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    ours50, raw50 = _percentiles(ours_ms)[0], _percentiles(raw_ms)[0]
    print(
        f"recall@10 vs exact: ours {statistics.fmean(ours_recall):.3f}, "
        f"raw HNSW {statistics.fmean(raw_recall):.3f}   "
        f"ratio p50 ours / raw: {_fmt(ours50 / raw50)}"
        + (
            f"   hybrid / ours vector: {_fmt(_percentiles(hybrid_ms)[0] / ours50)}"
            if hybrid
            else ""
        )
    )


def keyword_phase(endpoint, version, texts) -> None:  # type: ignore[no-untyped-def]
    """Ours in keyword mode (BM25 from the packed lists) beside exact BM25 summed row by row
    in SQL, and how often the two top-10s are the same list."""
    from rag import bm25

    def exact(text: str) -> list[Any]:
        stats = bm25.statistics(version.pk, text)
        if stats is None:
            return []
        # SQL adds a chunk's terms in the order its plan reads them, so the last bit of a
        # score may differ from ours: scores equal to 12 digits are ties, by chunk id.
        hits = bm25.exhaustive_search(version.pk, stats, MetadataFilter(), 20)
        return [c for c, _ in sorted(hits, key=lambda h: (-round(h[1], 12), h[0]))][:10]

    endpoint.retrieval_config = {"mode": "keyword", "candidates": 10, "highlights": False}
    for text in texts[:10]:
        services.query(endpoint, text, top_k=10)
        exact(text)
    ours_ms, exact_ms, same, postings = [], [], 0, []
    for n, text in enumerate(texts):
        if n % 2:
            truth, exact_t = timed(exact, text)
        result, ms = timed(services.query, endpoint, text, top_k=10)
        if not n % 2:
            truth, exact_t = timed(exact, text)
        ours_ms.append(ms)
        exact_ms.append(exact_t)
        same += [r.chunk_id for r in result.results] == truth
        postings.append(result.strategy.get("postings", 0))
    # The queries again, one after another: with no list kept in the process (every list read
    # from Postgres, as in a fresh process), then with the lists kept.
    unkept = {**getattr(settings, "AUTOMATE_RAG", {}), "KEYWORD_LIST_CACHE_MB": 0}
    with override_settings(AUTOMATE_RAG=unkept):
        unkept_ms = [timed(services.query, endpoint, text, top_k=10)[1] for text in texts]
    kept_ms = [timed(services.query, endpoint, text, top_k=10)[1] for text in texts]
    for label, samples in (
        ("ours keyword (BM25, packed lists)", ours_ms),
        ("exact BM25 (every posting summed)", exact_ms),
        ("ours keyword in a row, lists read", unkept_ms),
        ("ours keyword in a row, lists kept", kept_ms),
    ):
        p50, p99 = _percentiles(samples)
        print(f"query   {label:<38} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
    print(
        f"keyword top-10 identical to exact BM25: {same / len(texts):.3f} of queries "
        f"(postings per query: median {statistics.median(postings):,.0f}, max {max(postings):,})   "
        f"ratio p50 ours / exact: {_fmt(_percentiles(ours_ms)[0] / _percentiles(exact_ms)[0])}"
    )


def settings_value(name: str) -> Any:
    from rag.conf import rag_settings

    return getattr(rag_settings, name)


def timed(fn, *args, **kwargs):  # type: ignore[no-untyped-def]
    started = time.perf_counter()
    result = fn(*args, **kwargs)
    return result, (time.perf_counter() - started) * 1000


def embed_sample(tenant: Tenant, documents: int) -> float | None:
    """Chunks/s of the real path (parse, chunk, local model, write) on ``documents`` docs."""
    try:
        from rag.embedders.local import load_model

        load_model()
    except Exception as exc:  # the local-embeddings extra is optional
        print(f"embed   skipped: {exc}")
        return None
    corpus = Corpus(seed=11)
    source = KnowledgeSource.objects.create(tenant=tenant, name="Sample", type="api")
    model = EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")
    endpoint = RAGEndpoint.objects.create(tenant=tenant, name="Sample", embedding_model=model)
    endpoint.sources.set([source])
    for n in range(documents):
        paragraphs = "\n\n".join(corpus.text(80) for _ in range(4))
        services.push_document(
            source, external_id=f"doc-{n}", data=f"# Doc {n}\n\n{paragraphs}".encode()
        )
    started = time.perf_counter()
    version = services.reindex(endpoint)
    elapsed = time.perf_counter() - started
    chunks = version.stats["chunks"]
    print(
        f"embed   {documents} documents -> {chunks} chunks with the local model: "
        f"{chunks / elapsed:8.1f} chunks/s ({elapsed:.1f} s end to end)"
    )
    return chunks / elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument(
        "--ef-search", default="100", help="ef_search values to measure, comma-separated"
    )
    parser.add_argument("--embed-documents", type=int, default=100)
    parser.add_argument(
        "--build-memory", default="1GB", help="maintenance_work_mem of the HNSW builds"
    )
    parser.add_argument(
        "--no-raw-ingest", action="store_true", help="skip the raw COPY + HNSW ingest peer"
    )
    parser.add_argument("--m", type=int, default=None, help="HNSW m (default: HNSW_M)")
    parser.add_argument(
        "--ef-construction",
        type=int,
        default=None,
        help="HNSW ef_construction (default: HNSW_EF_CONSTRUCTION)",
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the chunks and index in place when done"
    )
    parser.add_argument(
        "--uniform-words", action="store_true", help="texts of uniformly drawn words (no Zipf)"
    )
    parser.add_argument(
        "--reuse",
        action="store_true",
        help="query the corpus a --keep run of the same --chunks left, without ingesting again",
    )
    args, _ = parser.parse_known_args()
    n, q = args.chunks, args.queries
    efs = [int(x) for x in str(args.ef_search).split(",")]

    call_command("migrate", verbosity=0)
    tenant, _ = Tenant.objects.get_or_create(slug="bench-rag", defaults={"name": "Bench RAG"})
    kept = kept_version(tenant, n) if args.reuse else None
    if kept is None:
        reset()
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        pg = cursor.fetchone()[0]
        cursor.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'")
        vector_version = cursor.fetchone()[0]
    print(f"Postgres {pg}, pgvector {vector_version}; {os.cpu_count()} CPUs")
    print(
        f"{n} chunks x {DIMENSIONS} dims, {q} queries, ef_search {efs}, HNSW m "
        f"{args.m or settings_value('HNSW_M')}, ef_construction "
        f"{args.ef_construction or settings_value('HNSW_EF_CONSTRUCTION')}, "
        f"build memory {args.build_memory}"
    )

    corpus = Corpus()
    started = time.perf_counter()
    vectors = corpus.vectors(n)
    if args.uniform_words:
        texts_of = [corpus.text() for _ in range(n)]
        queries_of = [corpus.text(6) for _ in range(q)]
    else:
        zipf = ZipfWords()
        texts_of, queries_of = zipf.texts(n, 60), zipf.texts(q, 4)
    rows = [(texts_of[i], vectors[i], i % 100) for i in range(n)]
    del texts_of
    for i, vector in enumerate(corpus.vectors(q)):
        QUERY_VECTORS[f"query {i} " + queries_of[i]] = vector.tolist()
    print(f"made up the corpus in {time.perf_counter() - started:.1f} s")
    texts = list(QUERY_VECTORS)

    providers = {"bench-lookup": "bench.bench_rag.LookupEmbedder"}
    sys.modules.setdefault("bench.bench_rag", sys.modules[__name__])
    overrides = {"EMBEDDING_PROVIDERS": providers, "HNSW_BUILD_MEMORY": args.build_memory}
    if args.m:
        overrides["HNSW_M"] = args.m
    if args.ef_construction:
        overrides["HNSW_EF_CONSTRUCTION"] = args.ef_construction
    with override_settings(AUTOMATE_RAG={**getattr(settings, "AUTOMATE_RAG", {}), **overrides}):
        if kept is not None:
            version, endpoint = kept, kept.endpoint
            print(f"ingest  skipped: reusing the kept version {version.pk}")
            pack_keyword_lists(version)
        else:
            endpoint, document = setup_endpoint(tenant)
            version, ours_copy, ours_build = ingest_ours(endpoint, document, rows)
            ours_total = ours_copy + ours_build
            print(
                f"ingest  ours: write {n / ours_copy:8.0f} chunks/s ({ours_copy:.1f} s), "
                f"HNSW build {ours_build:.1f} s, total {n / ours_total:8.0f} chunks/s"
            )
        if kept is None and not args.no_raw_ingest:
            raw_copy, raw_build = ingest_raw(rows)
            raw_total = raw_copy + raw_build
            print(
                f"ingest  raw pgvector: write {n / raw_copy:8.0f} chunks/s ({raw_copy:.1f} s), "
                f"HNSW build {raw_build:.1f} s, total {n / raw_total:8.0f} chunks/s"
            )
            print(f"ratio   ingest ours / raw: {(n / ours_total) / (n / raw_total):.2f}")
        del rows, vectors

        endpoint.refresh_from_db()
        exact_ms, truth = [], {}
        for text in texts:  # the recall ceiling, once for every ef_search
            ids, ms = timed(raw_query, version.pk, QUERY_VECTORS[text], True)
            exact_ms.append(ms)
            truth[text] = set(ids)
        p50, p99 = _percentiles(exact_ms)
        print(f"query   {'exact search (seq scan)':<38} p50 {p50:7.2f} ms  p99 {p99:7.2f} ms")
        for ef in efs:
            query_phase(endpoint, version, texts, truth, ef, hybrid=ef == efs[0])
        keyword_phase(endpoint, version, texts)
    if args.embed_documents:
        embed_sample(tenant, args.embed_documents)
    if not args.keep:
        reset()


if __name__ == "__main__":
    main()
