"""Hybrid retrieval over one index version: vector (HNSW or exact) + BM25, fused (:func:`fuse`).

The vector side walks the version's own HNSW graph (or searches exactly when a filter is
selective, or when the graph comes back short), the keyword side is BM25 from the version's
packed keyword lists (:mod:`rag.bm25`), and both apply the same metadata filter in SQL.
:mod:`rag.services` puts the pieces together.
Table names come from the models' ``_meta``; every value, the version id included, is bound.
"""

from __future__ import annotations

import html
import json
import math
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from django.db import connection
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from rag.errors import InvalidRetrievalConfig
from rag.filters import MetadataFilter
from rag.models import Chunk, Document, KeywordIndex, KnowledgeSource
from rag.pg_settings import session_setting

_CHUNKS = Chunk._meta.db_table
_DOCUMENTS = Document._meta.db_table
_SOURCES = KnowledgeSource._meta.db_table


class AnswerConfig(BaseModel):
    """``retrieval_config["answer"]``: how ``/answer`` and ``rag.answer`` ask the model (see
    :func:`rag.services.answer`). API callers cannot change it: a widget key is public."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: A model config slug or model id of the tenant (default: the tenant's default model).
    model: str | None = Field(default=None, min_length=1, max_length=200)
    #: A provider slug of the tenant (default: the model config's, or the default provider).
    provider: str | None = Field(default=None, min_length=1, max_length=100)
    max_tokens: int | None = Field(default=None, ge=1, le=100_000)
    temperature: float | None = Field(default=None, ge=0, le=2)
    #: Added to the system prompt (tone, language, what to say about the product).
    instructions: str = Field(default="", max_length=4000)
    #: The answer when no passage matches (no model is called then).
    no_passages_answer: str = Field(
        default="I could not find anything about this in the knowledge base.",
        min_length=1,
        max_length=2000,
    )


class RetrievalConfig(BaseModel):
    """An endpoint's ``retrieval_config``; unknown keys are refused (they are typos)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: hybrid: vector and full text fused; vector or keyword: one retriever alone.
    mode: Literal["hybrid", "vector", "keyword"] = "hybrid"
    #: How hybrid fuses the two sides (see :func:`fuse`): ``convex`` adds ``weight * score``
    #: with each side's scores min-max normalised over its candidates; ``rrf`` (reciprocal
    #: rank fusion) adds ``weight / (rrf_k + rank)``.
    fusion: Literal["convex", "rrf"] = "convex"
    vector_weight: float = Field(1.0, ge=0)
    keyword_weight: float = Field(1.0, ge=0)
    rrf_k: int = Field(60, ge=1, le=10_000)
    #: Results taken from each retriever before fusion (at least top_k).
    candidates: int = Field(50, ge=1, le=1000)
    #: Per-retriever overrides of ``candidates`` (None: ``candidates``).
    vector_candidates: int | None = Field(None, ge=1, le=1000)
    keyword_candidates: int | None = Field(None, ge=1, le=1000)
    #: BM25 parameters and the text search configuration (stemming, stop words; None: the
    #: AUTOMATE_RAG TEXT_SEARCH_CONFIG) of the keyword side. Read when an index version is
    #: built: a change takes effect with the next re-index.
    bm25_k1: float = Field(1.2, ge=0, le=10)
    bm25_b: float = Field(0.75, ge=0, le=1)
    language: str | None = Field(None, pattern=r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")
    #: top_k of a query that does not say.
    top_k: int = Field(5, ge=1, le=1000)
    #: hnsw.ef_search of unfiltered queries (filtered ones raise it as needed).
    ef_search: int = Field(200, ge=1, le=1000)
    #: A name from AUTOMATE_RAG["RERANKERS"], applied to the fused candidates.
    reranker: str | None = None
    #: Return highlighted fragments of each result.
    highlights: bool = True
    #: Answers: each hit's passage also holds this many neighbouring chunks of its document on
    #: each side (0: the hit alone); see :mod:`rag.passages`.
    passage_window: int = Field(0, ge=0, le=5)
    #: Answers: passages of near-identical documents are given to the model once.
    collapse_duplicates: bool = True
    #: Generation options of answers (ignored by plain queries).
    answer: AnswerConfig = AnswerConfig()

    def depths(self, top_k: int) -> tuple[int, int]:
        """Candidates taken from the vector and the keyword side for ``top_k`` results."""
        return (
            max(self.vector_candidates or self.candidates, top_k),
            max(self.keyword_candidates or self.candidates, top_k),
        )

    @classmethod
    def from_json(cls, data: Any) -> RetrievalConfig:
        try:
            return cls.model_validate(data or {})
        except ValidationError as exc:
            problems = {".".join(str(p) for p in e["loc"]) or "$": e["msg"] for e in exc.errors()}
            raise InvalidRetrievalConfig(
                "; ".join(f"{k}: {v}" for k, v in problems.items()), details=problems
            ) from None


# -- values ------------------------------------------------------------------------------------


@dataclass
class Candidate:
    """A chunk found by one or both retrievers, before its text is fetched."""

    chunk_id: uuid.UUID
    score: float = 0.0
    vector_rank: int | None = None
    vector_distance: float | None = None
    keyword_rank: int | None = None
    keyword_score: float | None = None


@dataclass
class ResultItem:
    chunk_id: uuid.UUID
    text: str
    title: str
    score: float
    document: dict[str, Any]
    metadata: dict[str, Any]
    highlights: list[str]
    position: int
    ranks: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "chunk_id": str(self.chunk_id)}


@dataclass
class QueryResult:
    """What a query answers: results best first, the version that answered, how, and how long."""

    results: list[ResultItem]
    index_version: dict[str, Any]
    timings: dict[str, float]
    trace_id: str
    strategy: dict[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {
            "results": [r.to_json() for r in self.results],
            "index_version": self.index_version,
            "timings": self.timings,
            "trace_id": self.trace_id,
            "strategy": self.strategy,
        }


#: A re-ranker named in AUTOMATE_RAG["RERANKERS"]: reorders (and may cut) the fused candidates,
#: whose ``text`` and ``title`` are filled. It must return items of the list it was given.
Reranker = Callable[[str, list[ResultItem]], list[ResultItem]]


def reranker(name: str) -> Reranker:
    from django.utils.module_loading import import_string

    from rag.conf import rag_settings

    configured: dict[str, str] = rag_settings.RERANKERS
    if name not in configured:
        raise InvalidRetrievalConfig(
            f"Re-ranker {name!r} is not configured; AUTOMATE_RAG['RERANKERS'] has: "
            f"{', '.join(sorted(configured)) or 'none'}.",
            details={"reranker": name},
        )
    fn: Reranker = import_string(configured[name])
    return fn


# -- fusion ------------------------------------------------------------------------------------


def fuse(
    vector_hits: list[tuple[uuid.UUID, float]],
    keyword_hits: list[tuple[uuid.UUID, float]],
    config: RetrievalConfig,
) -> list[Candidate]:
    """The two sides' candidates in one ranking, best first (at equal scores, those both sides
    found first, then by chunk id).

    ``rrf``: each side adds ``weight / (rrf_k + rank)`` (rank from 1). ``convex``: each side
    adds ``weight * (s - min) / (max - min)`` of its own scores (cosine similarity, BM25) over
    its candidates, 0 where a side did not return the chunk. A convex combination keeps how far
    ahead a hit is, which ranks alone lose (Bruch et al. 2023, "An Analysis of Fusion Functions
    for Hybrid Retrieval"); rag_eval --sweep measures both.
    """
    found: dict[uuid.UUID, Candidate] = {}
    for rank, (chunk_id, distance) in enumerate(vector_hits, start=1):
        c = found.setdefault(chunk_id, Candidate(chunk_id))
        c.vector_rank, c.vector_distance = rank, distance
    for rank, (chunk_id, score) in enumerate(keyword_hits, start=1):
        c = found.setdefault(chunk_id, Candidate(chunk_id))
        c.keyword_rank, c.keyword_score = rank, score
    if config.fusion == "rrf":
        for c in found.values():
            if c.vector_rank is not None:
                c.score += config.vector_weight / (config.rrf_k + c.vector_rank)
            if c.keyword_rank is not None:
                c.score += config.keyword_weight / (config.rrf_k + c.keyword_rank)
    else:
        similarity = _min_max({i: -d for i, d in vector_hits})
        relevance = _min_max(dict(keyword_hits))
        for chunk_id, c in found.items():
            vector_part = config.vector_weight * similarity.get(chunk_id, 0.0)
            c.score = vector_part + config.keyword_weight * relevance.get(chunk_id, 0.0)
    return sorted(found.values(), key=lambda c: (-c.score, -_sides(c), c.chunk_id))


def _sides(c: Candidate) -> int:
    """How many retrievers found ``c``: at equal scores, two agreeing beat one."""
    return (c.vector_rank is not None) + (c.keyword_rank is not None)


def _min_max(scores: dict[uuid.UUID, float]) -> dict[uuid.UUID, float]:
    """Scores mapped onto [0, 1] by the lowest and highest of them; all 1 when they are equal
    (a single candidate is as good as that side's best)."""
    if not scores:
        return {}
    low, high = min(scores.values()), max(scores.values())
    span = high - low
    return {i: (s - low) / span if span else 1.0 for i, s in scores.items()}


# -- retrieval -----------------------------------------------------------------------------------


def _vector_literal(vector: list[float]) -> str:
    return "[" + ",".join(map(repr, vector)) + "]"


def _matching_count(version_id: Any, flt: MetadataFilter, cap: int) -> int:
    """Chunks of the version matching ``flt``, counted up to ``cap`` (cheap when selective)."""
    where, params = flt.to_sql("metadata")
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT count(*) FROM (SELECT 1 FROM {_CHUNKS} WHERE index_version_id = %s "  # noqa: S608 -- table from _meta, values bound
            f"AND {where} LIMIT %s) AS matching",
            [version_id, *params, cap],
        )
        (count,) = cursor.fetchone()
    return int(count)


def _exact_vector_pg(
    version_id: Any, vector: str, flt: MetadataFilter, limit: int
) -> list[tuple[uuid.UUID, float]]:
    """Exact cosine search over the version's (filtered) rows; the MATERIALIZED CTE keeps the
    planner from answering through an HNSW graph."""
    where, params = flt.to_sql("metadata")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH candidates AS MATERIALIZED (SELECT id, embedding FROM {_CHUNKS} "  # noqa: S608 -- table from _meta, values bound
            f"WHERE index_version_id = %s AND {where}) "
            "SELECT id, embedding <=> %s::vector AS distance FROM candidates "
            "ORDER BY distance, id LIMIT %s",
            [version_id, *params, vector, limit],
        )
        return [(i, float(d)) for i, d in cursor.fetchall()]


def _hnsw_vector_pg(
    version: Any, vector: str, flt: MetadataFilter, limit: int, ef_search: int
) -> list[tuple[uuid.UUID, float]]:
    """Approximate search through the version's own graph with ``hnsw.ef_search`` =
    ``ef_search``. The planner matches the version's partial index because it plans with the
    bound version id's value (Django binds on the client by default; an unnamed server-side
    statement is planned with its parameters too)."""
    where, params = flt.to_sql("metadata")
    with session_setting("hnsw.ef_search", str(ef_search)), connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id, embedding <=> %s::vector AS distance FROM {_CHUNKS} "  # noqa: S608 -- table from _meta, values bound
            f"WHERE index_version_id = %s::uuid AND {where} "
            "ORDER BY embedding <=> %s::vector LIMIT %s",
            [vector, version.pk, *params, vector, limit],
        )
        return [(i, float(d)) for i, d in cursor.fetchall()]


def vector_search_pg(
    version: Any,
    vector: list[float],
    flt: MetadataFilter,
    limit: int,
    config: RetrievalConfig,
    *,
    exact: bool = False,
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    """Nearest chunks by cosine distance, complete under filters (see docs/rag.md).

    A filter matching at most EXACT_SEARCH_MAX_ROWS chunks is answered exactly. Otherwise HNSW
    runs with ef_search raised in proportion to the filter's selectivity; if the graph still
    yields fewer than ``limit`` rows (the filter pruned the candidates it visited), the query
    is answered exactly instead. So a filtered query returns ``limit`` rows whenever that many
    chunks match.
    """
    from rag.conf import rag_settings

    literal = _vector_literal(vector)
    if exact or not version.has_vector_index:
        return _exact_vector_pg(version.pk, literal, flt, limit), {"vector": "exact"}
    ef = config.ef_search
    if flt:
        threshold = int(rag_settings.EXACT_SEARCH_MAX_ROWS)
        matching = _matching_count(version.pk, flt, threshold + 1)
        if matching <= threshold:
            return (
                _exact_vector_pg(version.pk, literal, flt, limit),
                {"vector": "exact", "reason": "selective filter", "matching": matching},
            )
        total = max(int((version.stats or {}).get("chunks") or 0), matching)
        ef = math.ceil(limit * total / matching * 2)
    ef = max(ef, limit, config.ef_search)
    ef = min(ef, int(rag_settings.MAX_EF_SEARCH))
    hits = _hnsw_vector_pg(version, literal, flt, limit, ef)
    if len(hits) < limit:
        exact_hits = _exact_vector_pg(version.pk, literal, flt, limit)
        if len(exact_hits) > len(hits):
            return exact_hits, {"vector": "exact", "reason": "hnsw returned too few", "ef": ef}
    return hits, {"vector": "hnsw", "ef_search": ef}


def fetch_pg(chunk_ids: list[uuid.UUID]) -> list[tuple[Any, ...]]:
    """What a result shows of each chunk: id, text, title, position, metadata, document id,
    external id and title, source slug. Plain SQL: building this query through the ORM took
    longer (~1.5 ms) than Postgres takes to answer it (~0.3 ms)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT c.id, c.text, c.title, c.position, c.metadata, c.document_id, d.external_id, "  # noqa: S608 -- tables from _meta, values bound
            f"d.title, s.slug FROM {_CHUNKS} c JOIN {_DOCUMENTS} d ON d.id = c.document_id "
            f"JOIN {_SOURCES} s ON s.id = d.source_id WHERE c.id = ANY(%s)",
            [chunk_ids],
        )
        rows = cursor.fetchall()
    # jsonb arrives as text: Django's JSONField parses it, plain SQL must.
    return [(*r[:4], json.loads(r[4]) if isinstance(r[4], str) else r[4], *r[5:]) for r in rows]


def keyword_search_pg(
    version: Any, text: str, flt: MetadataFilter, limit: int
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    """The ``limit`` best chunks by exact BM25, scored from the version's packed keyword lists
    (:func:`rag.bm25.search`), and how they were found."""
    from rag import bm25

    return bm25.search(version, text, flt, limit)


_MARK_OPEN, _MARK_CLOSE, _FRAGMENT = "\u2983", "\u2984", "\u2985"


def highlights_pg(
    chunk_ids: list[uuid.UUID], text: str, version: Any = None
) -> dict[uuid.UUID, list[str]]:
    """Fragments of each chunk around the query's words, HTML-escaped, words in ``<mark>``,
    parsed in ``version``'s language; only the given (returned) chunks are read."""
    from rag.conf import rag_settings

    if not chunk_ids or not text.strip():
        return {}
    options = (
        f"StartSel={_MARK_OPEN}, StopSel={_MARK_CLOSE}, MaxFragments=2, MaxWords=30, "
        f"MinWords=8, FragmentDelimiter={_FRAGMENT}"
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "WITH c AS (SELECT coalesce((SELECT language FROM "  # noqa: S608 -- tables from _meta, values bound
            f"{KeywordIndex._meta.db_table} WHERE index_version_id = %s), %s)::regconfig AS cfg), "
            "q AS (SELECT c.cfg, replace(plainto_tsquery(c.cfg, %s)::text, ' & ', ' | ')"
            "::tsquery AS query FROM c) "
            f"SELECT id, ts_headline(q.cfg, text, q.query, %s) FROM {_CHUNKS}, q "
            "WHERE id = ANY(%s)",
            [
                getattr(version, "pk", None),
                str(rag_settings.TEXT_SEARCH_CONFIG),
                text,
                options,
                chunk_ids,
            ],
        )
        rows = cursor.fetchall()
    return {i: _marked_fragments(h) for i, h in rows}


def _marked_fragments(headline: str) -> list[str]:
    out = []
    for fragment in headline.split(_FRAGMENT):
        if _MARK_OPEN not in fragment:
            continue
        safe = html.escape(fragment.strip())
        out.append(safe.replace(_MARK_OPEN, "<mark>").replace(_MARK_CLOSE, "</mark>"))
    return out
