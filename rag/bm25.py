"""BM25 over an index version, from a term-impact table, with an early-stopping top-k.

Writing: :func:`index_chunks` turns chunks (title and text) into postings with Postgres' own
parser (``to_tsvector`` of the version's language: its stemming and stop words), one row per
(chunk, term) with the term's frequency ``tf``, the chunk's length ``dl`` (terms, stop words
excluded) and ``key``, the term-frequency component of BM25 at the version's reference length
``A0``::

    key = tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / A0))

Statement triggers keep N, the total length and each term's df as postings come and go
(migration 0002), whatever deletes the chunks.

Scoring is exact BM25 with the statistics as they are at query time::

    score(chunk) = sum over query terms t of
        idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

Incremental updates move N, df and avgdl; idf and avgdl are read per query (a query has few
terms), so scores never drift. Only the *order* of a term's postings (``key``, at ``A0``) is
fixed when they are written. A posting's true weight at avgdl ``A`` lies between ``key`` and
``key * A / A0`` (``A >= A0``) or ``key * A / A0`` and ``key`` (``A < A0``), so ``key * max(1,
A / A0)`` bounds every posting after a cut-off: the early stop stays provably exact as the
statistics drift, and only reads a little deeper. A re-index starts from a fresh ``A0``.

Top-k (:func:`search`): for each query term read its ``depth`` strongest postings from the
``(index_version, term, key DESC)`` index, add them per chunk (a lower bound of each seen
chunk's score; an upper bound adds the cut-off bound of every term it was not seen in). When the
k-th lower bound beats every other upper bound, and that of any chunk not seen at all, the
top-k set is certain (the NRA / threshold algorithm); the missing terms of those k chunks are
then read by primary key for their exact scores. Otherwise MaxScore: the weakest terms whose
strongest postings add up to less than the k-th lower bound cannot make a chunk that lacks every
other term reach the top, so only chunks holding one of the other, essential terms are scored
(their other terms read by primary key), and the long lists of common terms are never read. When
every term is essential, every posting of the query's terms is summed in SQL
(:func:`exhaustive_search`).
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db import connection

from rag.filters import MetadataFilter
from rag.models import Chunk, IndexVersion, KeywordIndex, KeywordPosting, KeywordTerm

_CHUNKS = Chunk._meta.db_table
_INDEX = KeywordIndex._meta.db_table
_POSTINGS = KeywordPosting._meta.db_table
_TERMS = KeywordTerm._meta.db_table

#: Postings read per term before deciding (at least ``2 * limit``).
FIRST_DEPTH = 100
#: Float sums are compared with this much slack, so rounding never certifies a wrong top-k.
_SLACK = 1e-9


# -- writing ------------------------------------------------------------------------------------


def keyword_index(version_id: Any) -> KeywordIndex:
    """The version's statistics row; created with the endpoint's ``language``, ``bm25_k1`` and
    ``bm25_b`` (retrieval_config) when its first chunks are written, fixed from then on."""
    from rag.conf import rag_settings
    from rag.search import RetrievalConfig

    found = KeywordIndex.objects.filter(index_version_id=version_id).first()
    if found is not None:
        return found
    version = IndexVersion.objects.select_related("endpoint").get(pk=version_id)
    # Only the keyword keys: a typo elsewhere (answer options) must not stop a build.
    raw = version.endpoint.retrieval_config or {}
    keys = ("language", "bm25_k1", "bm25_b")
    config = RetrievalConfig.from_json(
        {k: raw[k] for k in keys if isinstance(raw, dict) and k in raw}
    )
    index, _ = KeywordIndex.objects.get_or_create(
        index_version_id=version_id,
        defaults={
            "language": config.language or str(rag_settings.TEXT_SEARCH_CONFIG),
            "k1": config.bm25_k1,
            "b": config.bm25_b,
        },
    )
    return index


_TERMS_OF_CHUNKS = (
    f"SELECT c.id AS chunk_id, t.lexeme AS term, cardinality(t.positions) AS frequency "  # noqa: S608 -- table from _meta, values bound
    f"FROM {_CHUNKS} c, unnest(to_tsvector(%(language)s::regconfig, "
    "c.title || ' ' || c.text)) AS t WHERE c.index_version_id = %(version)s AND c.id = ANY(%(ids)s)"
)


def index_chunks(version_id: Any, chunk_ids: Sequence[uuid.UUID]) -> None:
    """Write the postings of ``chunk_ids`` (chunks of the version that have none yet)."""
    if not chunk_ids:
        return
    index = keyword_index(version_id)
    params = {
        "language": index.language,
        "version": version_id,
        "ids": list(chunk_ids),
        "k1": index.k1,
        "b": index.b,
    }
    with connection.cursor() as cursor:
        if index.reference_length is None:
            # The first chunks written set A0 (chunks are sized alike, so their mean is close).
            cursor.execute(
                f"UPDATE {_INDEX} SET reference_length = coalesce(reference_length, "  # noqa: S608 -- tables from _meta, values bound
                f"(SELECT avg(length) FROM (SELECT sum(frequency) AS length FROM "
                f"({_TERMS_OF_CHUNKS}) AS terms GROUP BY chunk_id) AS lengths)) "
                "WHERE index_version_id = %(version)s RETURNING reference_length",
                params,
            )
            row = cursor.fetchone()
            if row is None or row[0] is None:
                return  # no chunk has a term
            index.reference_length = float(row[0])
        cursor.execute(
            f"WITH terms AS ({_TERMS_OF_CHUNKS}), "  # noqa: S608 -- tables from _meta, values bound
            "lengths AS (SELECT chunk_id, sum(frequency)::int AS length FROM terms "
            "GROUP BY chunk_id) "
            f"INSERT INTO {_POSTINGS} (chunk_id, term, index_version_id, frequency, length, key) "
            "SELECT t.chunk_id, t.term, %(version)s, t.frequency, l.length, "
            "t.frequency * (%(k1)s + 1) / (t.frequency + %(k1)s * (1 - %(b)s + %(b)s * "
            "l.length / %(reference)s)) FROM terms t JOIN lengths l USING (chunk_id) "
            "ORDER BY t.term",
            {**params, "reference": index.reference_length},
        )


# -- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """What scoring a query needs: k1, b, N, avgdl, A0 and each query term's idf (terms with
    no postings dropped)."""

    k1: float
    b: float
    chunks: int
    avgdl: float
    reference_length: float
    idf: dict[str, float]

    def weight(self, frequency: int, length: int) -> float:
        """The term-frequency component of BM25 at the current avgdl."""
        k1, b = self.k1, self.b
        return frequency * (k1 + 1) / (frequency + k1 * (1 - b + b * length / self.avgdl))

    @property
    def drift(self) -> float:
        """How much a posting's true weight may exceed its ``key`` (see the module docstring)."""
        return max(1.0, self.avgdl / self.reference_length) * (1 + _SLACK)


def idf(chunks: int, documents: int) -> float:
    return math.log(1 + (chunks - documents + 0.5) / (documents + 0.5))


def statistics(version_id: Any, text: str) -> Statistics | None:
    """The version's statistics and the query's terms, parsed as the version's chunks were;
    None when the version has no postings or the query no known term."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT k.k1, k.b, k.chunks, k.total_length, k.reference_length, t.term, t.documents "  # noqa: S608 -- tables from _meta, values bound
            f"FROM {_INDEX} k CROSS JOIN LATERAL unnest(tsvector_to_array("
            "to_tsvector(k.language::regconfig, %s))) AS q(term) "
            f"JOIN {_TERMS} t ON t.index_version_id = k.index_version_id AND t.term = q.term "
            "WHERE k.index_version_id = %s AND t.documents > 0 AND k.chunks > 0",
            [text, version_id],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    k1, b, chunks, total, reference = rows[0][:5]
    return Statistics(
        k1=k1,
        b=b,
        chunks=chunks,
        avgdl=total / chunks,
        reference_length=reference,
        idf={term: idf(chunks, documents) for *_, term, documents in rows},
    )


def _filter_sql(flt: MetadataFilter, alias: str) -> tuple[str, list[Any]]:
    if not flt:
        return "", []
    where, params = flt.to_sql("c.metadata")
    return (
        f" AND EXISTS (SELECT 1 FROM {_CHUNKS} c WHERE c.id = {alias}.chunk_id AND {where})",  # noqa: S608 -- table from _meta, values bound
        params,
    )


def _top_postings(
    version_id: Any, terms: list[str], flt: MetadataFilter, depth: int
) -> list[tuple[str, uuid.UUID, int, int, float]]:
    """The ``depth`` strongest postings of each term (by ``key``), among chunks matching
    ``flt``: (term, chunk, tf, dl, key)."""
    where, params = _filter_sql(flt, "p")
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT q.term, p.chunk_id, p.frequency, p.length, p.key "  # noqa: S608 -- table from _meta, values bound
            "FROM unnest(%s::text[]) AS q(term) CROSS JOIN LATERAL ("
            f"SELECT p.chunk_id, p.frequency, p.length, p.key FROM {_POSTINGS} p "
            f"WHERE p.index_version_id = %s AND p.term = q.term{where} "
            "ORDER BY p.key DESC, p.chunk_id LIMIT %s) AS p",
            [terms, version_id, *params, depth],
        )
        return cursor.fetchall()


def _postings_of(
    chunk_ids: list[uuid.UUID], terms: list[str]
) -> list[tuple[uuid.UUID, str, int, int]]:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT chunk_id, term, frequency, length FROM {_POSTINGS} "  # noqa: S608 -- table from _meta, values bound
            "WHERE chunk_id = ANY(%s) AND term = ANY(%s)",
            [chunk_ids, terms],
        )
        return cursor.fetchall()


def _ranked(scores: dict[uuid.UUID, float], limit: int) -> list[tuple[uuid.UUID, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass
class _Round:
    """What one read of each term's strongest postings proves."""

    lower: dict[uuid.UUID, float]  # each seen chunk's score, from the postings read
    seen: dict[uuid.UUID, set[str]]  # the terms each chunk was seen in
    strongest: dict[str, float]  # per term: the most any of its postings can add
    threshold: float  # the limit-th best lower bound (0 with fewer chunks seen)
    top: list[uuid.UUID] | None  # the certain top chunks, or None


def _read_round(
    stats: Statistics,
    postings: list[tuple[str, uuid.UUID, int, int, float]],
    depth: int,
    limit: int,
) -> _Round:
    lower: dict[uuid.UUID, float] = defaultdict(float)
    seen: dict[uuid.UUID, set[str]] = defaultdict(set)
    read: dict[str, int] = defaultdict(int)
    first: dict[str, float] = {}
    cutoff: dict[str, float] = {}
    for term, chunk_id, frequency, length, key in postings:
        lower[chunk_id] += stats.idf[term] * stats.weight(frequency, length)
        seen[chunk_id].add(term)
        read[term] += 1
        first.setdefault(term, key)
        cutoff[term] = key  # rows come strongest first within a term
    strongest = {t: stats.idf[t] * first.get(t, 0.0) * stats.drift for t in stats.idf}
    # A term whose list came back shorter than depth was read whole: nothing hides behind it.
    bound = {
        term: stats.idf[term] * cutoff[term] * stats.drift
        for term in stats.idf
        if read[term] >= depth
    }
    ranked = sorted(lower, key=lambda c: (-lower[c], c))
    top, rest = ranked[:limit], ranked[limit:]
    threshold = lower[top[-1]] * (1 - _SLACK) if len(top) == limit else 0.0
    best_other = max(
        [sum(bound.values())]  # a chunk not seen at all
        + [lower[c] + sum(v for t, v in bound.items() if t not in seen[c]) for c in rest]
    )
    certain = not bound or (len(top) == limit and best_other < threshold)
    return _Round(lower, seen, strongest, threshold, top if certain else None)


def _essential_terms(found: _Round) -> list[str]:
    """MaxScore: the terms a chunk must hold to beat the threshold. The weakest terms whose
    strongest contributions add up to less than the threshold cannot lift a chunk that has
    none of the others into the top, so their (long) lists need not be read."""
    total, essential = 0.0, []
    for term in sorted(found.strongest, key=lambda t: (found.strongest[t], t)):
        total += found.strongest[term]
        if total >= found.threshold:
            essential.append(term)
    return essential


def search(
    version: IndexVersion, text: str, flt: MetadataFilter, limit: int
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    """The ``limit`` best chunks by BM25 (ties by id), with how they were found."""
    stats = statistics(version.pk, text)
    if stats is None:
        return [], {"keyword": "bm25", "terms": 0}
    terms = sorted(stats.idf)
    depth = max(FIRST_DEPTH, 2 * limit)
    found = _read_round(stats, _top_postings(version.pk, terms, flt, depth), depth, limit)
    how: dict[str, Any] = {"keyword": "bm25", "terms": len(terms)}
    if found.top is not None:
        scores = {c: found.lower[c] for c in found.top}
        missing = [c for c in found.top if len(found.seen[c]) < len(terms)]
        if missing:
            for chunk_id, term, frequency, length in _postings_of(missing, terms):
                if term not in found.seen[chunk_id]:
                    scores[chunk_id] += stats.idf[term] * stats.weight(frequency, length)
        return _ranked(scores, limit), {**how, "rounds": 1, "depth": depth}
    essential = _essential_terms(found)
    if len(essential) < len(terms):
        hits = exhaustive_search(version.pk, stats, flt, limit, essential=essential)
        return hits, {**how, "essential_terms": len(essential)}
    return exhaustive_search(version.pk, stats, flt, limit), {**how, "exhaustive": True}


def exhaustive_search(
    version_id: Any,
    stats: Statistics,
    flt: MetadataFilter,
    limit: int,
    *,
    essential: Sequence[str] | None = None,
) -> list[tuple[uuid.UUID, float]]:
    """Exact BM25 over every posting of the query's terms, summed in SQL: the ceiling the
    early stop is measured against. With ``essential`` terms, only chunks holding one of them
    are scored (by primary-key reads of their other terms), which is exact when the other
    terms alone cannot reach the top (see :func:`_essential_terms`)."""
    terms = sorted(stats.idf)
    where, params = _filter_sql(flt, "p")
    weight = (
        "q.idf * p.frequency * (%(k1)s + 1) / (p.frequency + %(k1)s * "
        "(1 - %(b)s + %(b)s * p.length / %(avgdl)s))"
    )
    values: dict[str, Any] = {
        "k1": stats.k1,
        "b": stats.b,
        "avgdl": stats.avgdl,
        "terms": terms,
        "idf": [stats.idf[t] for t in terms],
        "version": version_id,
        "essential": list(essential or ()),
        "limit": limit,
    }
    parts = where.split("%s")  # the filter's positional values, as named ones
    where = "".join(f"{part}%(f{n})s" for n, part in enumerate(parts[:-1])) + parts[-1]
    values.update({f"f{n}": value for n, value in enumerate(params)})
    if essential is None:
        sql = (
            f"SELECT p.chunk_id, sum({weight}) AS score "  # noqa: S608 -- table from _meta, values bound
            "FROM unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, idf) "
            f"JOIN {_POSTINGS} p ON p.index_version_id = %(version)s AND p.term = q.term{where} "
            "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(limit)s"
        )
    else:
        sql = (
            "WITH candidates AS (SELECT DISTINCT p.chunk_id FROM "  # noqa: S608 -- table from _meta, values bound
            f"{_POSTINGS} p WHERE p.index_version_id = %(version)s "
            f"AND p.term = ANY(%(essential)s){where}) "
            f"SELECT p.chunk_id, sum({weight}) AS score FROM candidates c "
            "CROSS JOIN unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, idf) "
            f"JOIN {_POSTINGS} p ON p.chunk_id = c.chunk_id AND p.term = q.term "
            "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(limit)s"
        )
    with connection.cursor() as cursor:
        cursor.execute(sql, values)
        return [(i, float(s)) for i, s in cursor.fetchall()]
