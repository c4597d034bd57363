"""Retrieval evaluation on BEIR-format datasets, end to end through an endpoint.

A BEIR directory holds ``corpus.jsonl`` (``{"_id", "title", "text", "metadata"?}``),
``queries.jsonl`` (``{"_id", "text"}``) and ``qrels/<split>.tsv`` (``query-id corpus-id score``
with a header; score > 0 is relevant, higher is more relevant). :func:`ingest` stores the corpus
as documents of an ``api`` source, :func:`evaluate` runs every judged query through
:func:`rag.services.query` and scores the ranked documents:

- nDCG@10 with graded gains (the qrels score), as BEIR and pytrec_eval compute it;
- recall@100: the share of relevant documents in the first 100;
- MRR@10: 1 / rank of the first relevant document in the first 10 (0 if none);
- HNSW recall@10: for the same query vectors, the share of the exact top-10 chunks that the
  HNSW graph returns (the approximate index measured against its own ceiling).

Chunks are folded into documents by their best rank, so a document split in several chunks
counts once.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from django.db import transaction

from rag import search, services
from rag.errors import InvalidSourceConfig
from rag.filters import MetadataFilter
from rag.models import KnowledgeSource, RAGEndpoint
from rag.search import RetrievalConfig
from rag.sync import Item, store_document

Tick = Callable[[int], None]


@dataclass
class BeirDataset:
    root: Path
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]

    def corpus(self) -> Iterator[dict[str, Any]]:
        """Corpus entries, streamed (a corpus may not fit in memory twice)."""
        with (self.root / "corpus.jsonl").open(encoding="utf-8") as handle:
            for number, line in enumerate(handle, start=1):
                if line.strip():
                    entry = json.loads(line)
                    if "_id" not in entry:
                        raise InvalidSourceConfig(f"corpus.jsonl line {number} has no _id")
                    yield entry

    def corpus_size(self) -> int:
        with (self.root / "corpus.jsonl").open(encoding="utf-8") as handle:
            return sum(1 for line in handle if line.strip())


def load_beir(root: str | Path, split: str = "test") -> BeirDataset:
    """Read queries and judgments of ``split``; the corpus is streamed later."""
    root = Path(root)
    missing = [
        name
        for name in ("corpus.jsonl", "queries.jsonl", f"qrels/{split}.tsv")
        if not (root / name).is_file()
    ]
    if missing:
        raise InvalidSourceConfig(
            f"{root} is not a BEIR dataset: missing {', '.join(missing)}",
            details={"missing": missing},
        )
    queries = {}
    with (root / "queries.jsonl").open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                entry = json.loads(line)
                queries[str(entry["_id"])] = str(entry["text"])
    qrels: dict[str, dict[str, int]] = {}
    with (root / f"qrels/{split}.tsv").open(encoding="utf-8", newline="") as handle:
        for row in csv.reader(handle, delimiter="\t"):
            if len(row) < 3 or row[0] == "query-id":
                continue
            qrels.setdefault(row[0], {})[row[1]] = int(float(row[2]))
    return BeirDataset(root=root, queries=queries, qrels=qrels)


# -- metrics -----------------------------------------------------------------------------------


def ndcg_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    """Normalised DCG with gain = judgment and log2(rank + 1) discount."""
    dcg = sum(
        judged.get(doc, 0) / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], start=1)
    )
    ideal_gains = sorted((g for g in judged.values() if g > 0), reverse=True)[:k]
    ideal = sum(g / math.log2(rank + 1) for rank, g in enumerate(ideal_gains, start=1))
    return dcg / ideal if ideal else 0.0


def recall_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 100) -> float:
    relevant = {doc for doc, g in judged.items() if g > 0}
    if not relevant:
        return 0.0
    return len(relevant & set(ranked[:k])) / len(relevant)


def mrr_at(ranked: Sequence[str], judged: Mapping[str, int], k: int = 10) -> float:
    for rank, doc in enumerate(ranked[:k], start=1):
        if judged.get(doc, 0) > 0:
            return 1.0 / rank
    return 0.0


def overlap_at(found: Sequence[Any], truth: Sequence[Any], k: int = 10) -> float:
    """Share of the true top-k that ``found``'s top-k contains (ANN recall)."""
    expected = set(truth[:k])
    return len(expected & set(found[:k])) / len(expected) if expected else 1.0


# -- running -----------------------------------------------------------------------------------


@dataclass
class EvalReport:
    dataset: str
    documents: int
    chunks: int
    queries: int
    ndcg_at_10: float
    recall_at_100: float
    mrr_at_10: float
    hnsw_recall_at_10: float
    latency_ms_p50: float
    latency_ms_p99: float
    per_query: dict[str, dict[str, float]] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k != "per_query"}


def prepare(
    tenant: Any,
    name: str,
    *,
    provider: str = "local",
    retrieval_config: dict[str, Any] | None = None,
) -> RAGEndpoint:
    """The evaluation's source and endpoint in ``tenant`` (reused across runs)."""
    from rag.models import EmbeddingModel

    source, _ = KnowledgeSource.objects.get_or_create(
        tenant=tenant, slug=name, defaults={"name": name, "type": "api"}
    )
    model_id = "all-MiniLM-L6-v2" if provider == "local" else provider
    model, _ = EmbeddingModel.objects.get_or_create(
        tenant=tenant,
        slug=f"{name}-{provider}",
        defaults={"name": f"{name} {provider}", "provider": provider, "model_id": model_id},
    )
    endpoint, _ = RAGEndpoint.objects.get_or_create(
        tenant=tenant, slug=name, defaults={"name": name, "embedding_model": model}
    )
    endpoint.sources.add(source)
    if retrieval_config is not None and endpoint.retrieval_config != retrieval_config:
        endpoint.retrieval_config = retrieval_config
        endpoint.save(update_fields=["retrieval_config", "updated_at"])
    return endpoint


def ingest(
    endpoint: RAGEndpoint, dataset: BeirDataset, *, tick: Tick | None = None
) -> tuple[int, list[Any]]:
    """Store the corpus as documents (incremental: unchanged ones are skipped), 500 per
    transaction. Returns the corpus size and the ids of new or changed documents."""
    source = endpoint.sources.get(slug=endpoint.slug)
    changed: list[Any] = []
    count = 0
    batch: list[dict[str, Any]] = []

    def flush() -> None:
        with transaction.atomic():
            for entry in batch:
                metadata = dict(entry.get("metadata") or {})
                metadata["beir_id"] = str(entry["_id"])
                item = Item(
                    external_id=str(entry["_id"]),
                    data=str(entry.get("text") or "").encode("utf-8"),
                    content_type="text/plain",
                    title=str(entry.get("title") or ""),
                    metadata=metadata,
                )
                document, outcome = store_document(source, item)
                if outcome != "unchanged":
                    changed.append(document.pk)
        if tick:
            tick(len(batch))
        batch.clear()

    for entry in dataset.corpus():
        batch.append(entry)
        count += 1
        if len(batch) >= 500:
            flush()
    if batch:
        flush()
    return count, changed


def evaluate(
    endpoint: RAGEndpoint,
    dataset: BeirDataset,
    *,
    top_k: int = 100,
    limit: int | None = None,
    tick: Tick | None = None,
) -> EvalReport:
    """Run every judged query through the endpoint and score it (see the module docstring)."""
    endpoint.refresh_from_db()
    version = endpoint.live_version
    if version is None:
        raise services.IndexNotReady(details={"endpoint": endpoint.slug})
    judged = [q for q in dataset.queries if q in dataset.qrels]
    if limit is not None:
        judged = judged[:limit]
    config = RetrievalConfig.from_json(endpoint.retrieval_config)
    ndcg, recall, mrr, ann, latencies = [], [], [], [], []
    per_query: dict[str, dict[str, float]] = {}
    for query_id in judged:
        text = dataset.queries[query_id]
        started = time.perf_counter()
        result = services.query(endpoint, text, top_k=top_k)
        latencies.append((time.perf_counter() - started) * 1000)
        ranked = list(dict.fromkeys(r.document["external_id"] for r in result.results))
        judgments = dataset.qrels[query_id]
        scores = {
            "ndcg@10": ndcg_at(ranked, judgments, 10),
            "recall@100": recall_at(ranked, judgments, 100),
            "mrr@10": mrr_at(ranked, judgments, 10),
        }
        vector = version.embedding_model.embed(text)
        approx, _ = search.vector_search_pg(version, vector, MetadataFilter(), 10, config)
        exact, _ = search.vector_search_pg(
            version, vector, MetadataFilter(), 10, config, exact=True
        )
        scores["hnsw_recall@10"] = overlap_at([i for i, _ in approx], [i for i, _ in exact], 10)
        per_query[query_id] = scores
        ndcg.append(scores["ndcg@10"])
        recall.append(scores["recall@100"])
        mrr.append(scores["mrr@10"])
        ann.append(scores["hnsw_recall@10"])
        if tick:
            tick(1)

    def mean(values: list[float]) -> float:
        return round(statistics.fmean(values), 4) if values else 0.0

    ordered = sorted(latencies)
    return EvalReport(
        dataset=dataset.root.name,
        documents=version.chunks.values("document_id").distinct().count(),
        chunks=version.chunks.count(),
        queries=len(judged),
        ndcg_at_10=mean(ndcg),
        recall_at_100=mean(recall),
        mrr_at_10=mean(mrr),
        hnsw_recall_at_10=mean(ann),
        latency_ms_p50=round(statistics.median(ordered), 2) if ordered else 0.0,
        latency_ms_p99=round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))], 2)
        if ordered
        else 0.0,
        per_query=per_query,
    )


# -- the fusion sweep ----------------------------------------------------------------------------


@dataclass(frozen=True)
class FusionSetting:
    """One grid point of :func:`sweep`: the fusion method, RRF's k (``rrf`` only), the two
    weights, and the candidates taken from each side (the ``retrieval_config`` keys of the same
    names)."""

    fusion: str
    rrf_k: int
    vector_weight: float
    keyword_weight: float
    candidates: int

    def config(self) -> RetrievalConfig:
        return RetrievalConfig.model_validate(
            {
                "fusion": self.fusion,
                "rrf_k": self.rrf_k,
                "vector_weight": self.vector_weight,
                "keyword_weight": self.keyword_weight,
                "candidates": self.candidates,
            }
        )

    @property
    def label(self) -> str:
        k = f" rrf_k={self.rrf_k}" if self.fusion == "rrf" else ""
        return (
            f"hybrid {self.fusion}{k} vector={self.vector_weight:g} "
            f"keyword={self.keyword_weight:g} candidates={self.candidates}"
        )


def fusion_grid(
    fusions: Sequence[str] = ("convex", "rrf"),
    rrf_ks: Sequence[int] = (10, 60),
    weights: Sequence[tuple[float, float]] = ((1.0, 1.0), (1.0, 0.5), (0.5, 1.0)),
    candidates: Sequence[int] = (20, 100),
) -> list[FusionSetting]:
    """Every combination; ``rrf_k`` only varies the ``rrf`` points (convex has no k)."""
    return [
        FusionSetting(fusion, k, v, w, c)
        for fusion in dict.fromkeys(fusions)
        for k in (rrf_ks if fusion == "rrf" else rrf_ks[:1])
        for v, w in weights
        for c in candidates
    ]


@dataclass
class SweepRow:
    label: str
    ndcg_at_10: float
    setting: FusionSetting | None = None


def _documents(chunk_hits: Sequence[Any], external: Mapping[Any, str]) -> list[str]:
    """Chunks folded into documents by their best rank."""
    return list(dict.fromkeys(external[c] for c in chunk_hits if c in external))


def _rrf(*rankings: Sequence[str], k: int = 60) -> list[str]:
    scores: dict[str, float] = {}
    for ranking in rankings:
        for rank, doc in enumerate(ranking, start=1):
            scores[doc] = scores.get(doc, 0.0) + 1 / (k + rank)
    return sorted(scores, key=lambda d: (-scores[d], d))


def _okapi_tokens(text: str) -> list[str]:
    """Plain lower-cased words: the off-the-shelf baseline, with no stemming or stop words."""
    import re

    return re.findall(r"\w+", text.lower())


def sweep(
    endpoint: RAGEndpoint,
    dataset: BeirDataset,
    grid: Sequence[FusionSetting],
    *,
    limit: int | None = None,
    tick: Tick | None = None,
) -> list[SweepRow]:
    """nDCG@10 (linear gain, as BEIR) of every fusion setting of ``grid`` on the endpoint's live
    version, then of the vector side alone, our BM25 alone, rank_bm25's BM25Okapi over the
    corpus, and a plain RRF (k 60, equal weights) of the vector side and BM25Okapi.

    Each query is embedded and searched once at the deepest candidates of the grid; every
    setting fuses prefixes of those two rankings, exactly as :func:`rag.services.query` would
    with that ``retrieval_config``. Chunks are folded into documents by their best rank.
    """
    from rank_bm25 import BM25Okapi

    endpoint.refresh_from_db()
    version = endpoint.live_version
    if version is None:
        raise services.IndexNotReady(details={"endpoint": endpoint.slug})
    external = dict(version.chunks.values_list("pk", "document__external_id"))
    corpus_ids, corpus_tokens = [], []
    for entry in dataset.corpus():
        corpus_ids.append(str(entry["_id"]))
        title, text = entry.get("title") or "", entry.get("text") or ""
        corpus_tokens.append(_okapi_tokens(f"{title} {text}"))
    okapi = BM25Okapi(corpus_tokens)

    depth = max([s.candidates for s in grid] + [100])
    base = RetrievalConfig.from_json(endpoint.retrieval_config)
    judged = [q for q in dataset.queries if q in dataset.qrels]
    if limit is not None:
        judged = judged[:limit]
    totals: dict[str, float] = {}
    for query_id in judged:
        text, judgments = dataset.queries[query_id], dataset.qrels[query_id]
        vector = version.embedding_model.embed(text)
        vector_hits, _ = search.vector_search_pg(version, vector, MetadataFilter(), depth, base)
        keyword_hits, _ = search.keyword_search_pg(version, text, MetadataFilter(), depth)
        scores = okapi.get_scores(_okapi_tokens(text))
        best = sorted(range(len(corpus_ids)), key=lambda i: (-scores[i], corpus_ids[i]))[:depth]
        okapi_ranking = [corpus_ids[i] for i in best if scores[i] > 0]
        vector_docs = _documents([c for c, _ in vector_hits], external)
        rankings: dict[str, list[str]] = {}
        for setting in grid:
            fused = search.fuse(
                vector_hits[: setting.candidates],
                keyword_hits[: setting.candidates],
                setting.config(),
            )
            rankings[setting.label] = _documents([c.chunk_id for c in fused], external)
        rankings["vector only"] = vector_docs
        rankings["keyword only (BM25)"] = _documents([c for c, _ in keyword_hits], external)
        rankings["rank_bm25 BM25Okapi"] = okapi_ranking
        rankings["RRF of vector + BM25Okapi"] = _rrf(vector_docs, okapi_ranking)
        for label, ranked in rankings.items():
            totals[label] = totals.get(label, 0.0) + ndcg_at(ranked, judgments, 10)
        if tick:
            tick(1)
    count = max(1, len(judged))
    settings = {s.label: s for s in grid}
    return [
        SweepRow(label, round(total / count, 4), settings.get(label))
        for label, total in totals.items()
    ]
