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
from rag.pg_settings import session_setting

_CHUNKS = Chunk._meta.db_table
_INDEX = KeywordIndex._meta.db_table
_POSTINGS = KeywordPosting._meta.db_table
_TERMS = KeywordTerm._meta.db_table

#: Postings read per term before deciding (at least ``2 * limit``).
FIRST_DEPTH = 100
#: Postings of the essential terms that MaxScore sums whole; a query whose essential terms hold
#: more reads only the strongest of each, that many in all, and is answered approximately
#: (``"exact": False``).
MAX_EXACT_POSTINGS = 60_000
#: See :func:`search`: how much longer than the essential lists another list may be and still
#: be summed with them.
SUM_OTHERS = 10
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
    """What scoring a query needs: k1, b, N, avgdl, A0 and each query term's idf and df (terms
    with no postings dropped)."""

    k1: float
    b: float
    chunks: int
    avgdl: float
    reference_length: float
    idf: dict[str, float]
    documents: dict[str, int]

    def contribution(self, term: str, frequency: int, length: int) -> float:
        """What ``term`` adds to a chunk's score; the same expression, in the same order, as
        :data:`_WEIGHT_SQL`, so Python and SQL give bit-identical scores (and break ties alike)."""
        k1, b = self.k1, self.b
        return (
            self.idf[term]
            * frequency
            * (k1 + 1)
            / (frequency + k1 * (1 - b + b * length / self.avgdl))
        )

    @property
    def drift(self) -> float:
        """How much a posting's true weight may exceed its ``key`` (see the module docstring)."""
        return max(1.0, self.avgdl / self.reference_length) * (1 + _SLACK)


_WEIGHT_SQL = (
    "q.idf * p.frequency * (%(k1)s + 1) / (p.frequency + %(k1)s * "
    "(1 - %(b)s + %(b)s * p.length / %(avgdl)s))"
)


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
        documents={term: documents for *_, term, documents in rows},
    )


def _filter_sql(flt: MetadataFilter, alias: str) -> tuple[str, list[Any]]:
    if not flt:
        return "", []
    where, params = flt.to_sql("c.metadata")
    return (
        f" AND EXISTS (SELECT 1 FROM {_CHUNKS} c WHERE c.id = {alias}.chunk_id AND {where})",  # noqa: S608 -- table from _meta, values bound
        params,
    )


def _named(where: str, params: list[Any]) -> tuple[str, dict[str, Any]]:
    """A filter's positional placeholders as named ones (``%(f0)s``...), to sit beside others."""
    parts = where.split("%s")
    named = "".join(f"{part}%(f{n})s" for n, part in enumerate(parts[:-1])) + parts[-1]
    return named, {f"f{n}": value for n, value in enumerate(params)}


def _top_postings(
    version_id: Any, terms: list[str], flt: MetadataFilter, depth: int
) -> list[tuple[str, uuid.UUID, int, int, float]]:
    """The ``depth`` strongest postings of each term (by ``key``, ties by chunk id), among
    chunks matching ``flt``: (term, chunk, tf, dl, key)."""
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


def _exact_scores(stats: Statistics, chunk_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, float]:
    """Exact scores of ``chunk_ids``, from every posting they have of the query's terms (read
    by primary key), summed in term order as the SQL sum does."""
    if not chunk_ids:
        return {}
    terms = sorted(stats.idf)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT chunk_id, term, frequency, length FROM {_POSTINGS} "  # noqa: S608 -- table from _meta, values bound
            "WHERE chunk_id = ANY(%s) AND term = ANY(%s)",
            [list(chunk_ids), terms],
        )
        rows = sorted(cursor.fetchall(), key=lambda row: row[1])
    scores: dict[uuid.UUID, float] = defaultdict(float)
    for chunk_id, term, frequency, length in rows:
        scores[chunk_id] += stats.contribution(term, frequency, length)
    return dict(scores)


def _ranked(scores: dict[uuid.UUID, float], limit: int) -> list[tuple[uuid.UUID, float]]:
    return sorted(scores.items(), key=lambda item: (-item[1], item[0]))[:limit]


@dataclass
class _Reading:
    """What reading each term's strongest postings proves about the chunks not yet scored."""

    partial: dict[uuid.UUID, float]  # each seen chunk's score from the postings read
    seen: dict[uuid.UUID, set[str]]  # the terms each chunk was seen in
    bound: dict[str, float]  # per term not read whole: the most an unread posting adds

    def upper(self, chunk_id: uuid.UUID) -> float:
        """The most a seen chunk can score: what was read, plus the bound of every term it was
        not seen in and whose list was not read whole."""
        seen = self.seen[chunk_id]
        return self.partial[chunk_id] + sum(v for t, v in self.bound.items() if t not in seen)


def _read(
    stats: Statistics, postings: list[tuple[str, uuid.UUID, int, int, float]], depth: int
) -> _Reading:
    partial: dict[uuid.UUID, float] = defaultdict(float)
    seen: dict[uuid.UUID, set[str]] = defaultdict(set)
    read: dict[str, int] = defaultdict(int)
    cutoff: dict[str, float] = {}
    for term, chunk_id, frequency, length, key in postings:
        partial[chunk_id] += stats.contribution(term, frequency, length)
        seen[chunk_id].add(term)
        read[term] += 1
        cutoff[term] = key  # rows come strongest first within a term
    # A term whose list came back shorter than depth was read whole: nothing hides behind it.
    bound = {
        term: stats.idf[term] * cutoff[term] * stats.drift
        for term in stats.idf
        if read[term] >= depth
    }
    return _Reading(partial, seen, bound)


def _essential_terms(bound: dict[str, float], threshold: float) -> list[str]:
    """MaxScore: the terms an unseen chunk must hold to reach ``threshold``. The weakest terms
    whose bounds add up to less than it cannot lift a chunk that has none of the others into
    the top, so their (long) lists need not be read."""
    total, essential = 0.0, []
    for term in sorted(bound, key=lambda t: (bound[t], t)):
        total += bound[term]
        if total >= threshold:
            essential.append(term)
    return essential


def search(
    version: IndexVersion, text: str, flt: MetadataFilter, limit: int
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    """The ``limit`` best chunks by BM25 (ties by chunk id), with how they were found.

    1. Read the ``depth`` strongest postings of each term and score the best chunks seen
       exactly (their other terms by primary key): the ``limit``-th score is the threshold.
    2. Score every other seen chunk whose upper bound reaches it.
    3. If a chunk not seen at all could still reach it, MaxScore: sum the essential terms'
       whole lists in SQL (with other lists up to :data:`SUM_OTHERS` times as long), keep
       the chunks that can reach the threshold and score those. When the essential lists
       hold more than :data:`MAX_EXACT_POSTINGS` postings, only their strongest are read and
       the answer says ``"exact": False``.
    """
    from rag.conf import rag_settings

    with session_setting("work_mem", str(rag_settings.KEYWORD_WORK_MEM)):
        return _search(version, text, flt, limit)


def _search(
    version: IndexVersion, text: str, flt: MetadataFilter, limit: int
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    stats = statistics(version.pk, text)
    how: dict[str, Any] = {"keyword": "bm25", "terms": len(stats.idf) if stats else 0}
    if stats is None:
        return [], how
    depth = max(FIRST_DEPTH, 2 * limit)
    reading = _read(stats, _top_postings(version.pk, sorted(stats.idf), flt, depth), depth)
    seen = sorted(reading.partial, key=lambda c: (-reading.partial[c], c))
    scores = _exact_scores(stats, seen[: 2 * limit])
    threshold = _threshold(scores, limit)
    rest = [c for c in seen[2 * limit :] if reading.upper(c) >= threshold]
    if rest:
        scores.update(_exact_scores(stats, _best_of(stats, rest, 2 * limit)))
        threshold = _threshold(scores, limit)
    how["depth"] = depth
    # No unfinished list (every posting read), or none can lift an unseen chunk to the top.
    if not reading.bound or sum(reading.bound.values()) < threshold:
        return _ranked(scores, limit), {**how, "exact": True, "stopped_early": True}
    essential = _essential_terms(reading.bound, threshold)
    postings = sum(stats.documents[t] for t in essential)
    exact = postings <= MAX_EXACT_POSTINGS
    # Other unfinished lists up to SUM_OTHERS times as long are summed too: a posting read in
    # order costs far less than a primary-key probe, and each one summed leaves fewer chunks
    # to probe.
    summed, total = list(essential), postings
    for term in sorted(set(reading.bound) - set(essential), key=lambda t: stats.documents[t]):
        total += stats.documents[term]
        if total > min(SUM_OTHERS * postings, MAX_EXACT_POSTINGS):
            break
        summed.append(term)
    needed = threshold - sum(v for t, v in reading.bound.items() if t not in summed)
    found = _reaching(
        version.pk,
        stats,
        flt,
        essential,
        summed,
        needed,
        None if exact else MAX_EXACT_POSTINGS // len(summed),
        2 * limit,
    )
    scores.update(_exact_scores(stats, [c for c in found if c not in scores]))
    how.update(essential_terms=len(essential), summed_terms=len(summed), postings=postings)
    return _ranked(scores, limit), {**how, "exact": exact}


def _threshold(scores: dict[uuid.UUID, float], limit: int) -> float:
    """The ``limit``-th best exact score (0 with fewer), a little under so rounding never
    prunes a tie."""
    if len(scores) < limit:
        return 0.0
    return sorted(scores.values(), reverse=True)[limit - 1] * (1 - _SLACK)


def _best_of(stats: Statistics, chunk_ids: list[uuid.UUID], limit: int) -> list[uuid.UUID]:
    """The ``limit`` best of ``chunk_ids``, scored in SQL (a long list never crosses into
    Python row by row)."""
    values = {**_scoring(stats, sorted(stats.idf)), "ids": chunk_ids, "limit": limit}
    return [chunk_id for chunk_id, _ in _summed_top("p.chunk_id = ANY(%(ids)s)", values)]


def _summed_top(postings: str, values: dict[str, Any]) -> list[tuple[uuid.UUID, float]]:
    """The ``limit`` best chunks by the query's terms summed over the postings that match
    ``postings`` (an SQL condition on ``p``; values bound by name)."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.chunk_id, sum({_WEIGHT_SQL}) AS score "  # noqa: S608 -- table from _meta, values bound
            "FROM unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, idf) "
            f"JOIN {_POSTINGS} p ON {postings} AND p.term = q.term "
            "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(limit)s",
            values,
        )
        return [(i, float(s)) for i, s in cursor.fetchall()]


def _scoring(stats: Statistics, terms: list[str]) -> dict[str, Any]:
    """The values :data:`_WEIGHT_SQL` reads, for ``terms``."""
    return {
        "k1": stats.k1,
        "b": stats.b,
        "avgdl": stats.avgdl,
        "terms": terms,
        "idf": [stats.idf[t] for t in terms],
    }


def _reaching(
    version_id: Any,
    stats: Statistics,
    flt: MetadataFilter,
    essential: list[str],
    summed: list[str],
    needed: float,
    depth: int | None,
    limit: int,
) -> list[uuid.UUID]:
    """The ``limit`` best chunks holding an essential term: the ``summed`` terms' lists (their
    ``depth`` strongest postings each, or all) are summed per chunk, chunks whose sum stays
    under ``needed`` are dropped, and the rest get their other terms by primary key."""
    where, params = _named(*_filter_sql(flt, "p"))
    others = sorted(set(stats.idf) - set(summed))
    values = {
        **_scoring(stats, summed),
        "version": version_id,
        "essential": essential,
        "depth": depth,
        "needed": needed,
        "others": others,
        "other_idf": [stats.idf[t] for t in others],
        "limit": limit,
        **params,
    }
    other_weight = _WEIGHT_SQL.replace("q.idf", "o.idf")
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH reaching AS (SELECT p.chunk_id, sum({_WEIGHT_SQL}) AS partial "  # noqa: S608 -- tables from _meta, values bound
            "FROM unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, idf) CROSS JOIN LATERAL ("
            f"SELECT p.chunk_id, p.frequency, p.length FROM {_POSTINGS} p "
            f"WHERE p.index_version_id = %(version)s AND p.term = q.term{where} "
            "ORDER BY p.key DESC, p.chunk_id LIMIT %(depth)s) AS p "  # LIMIT NULL: all of them
            "GROUP BY p.chunk_id "
            "HAVING bool_or(q.term = ANY(%(essential)s)) AND sum("
            f"{_WEIGHT_SQL}) >= %(needed)s) "
            "SELECT r.chunk_id FROM reaching r ORDER BY r.partial + coalesce(("
            f"SELECT sum({other_weight}) FROM unnest(%(others)s::text[], %(other_idf)s::float8[]) "
            f"AS o(term, idf) JOIN {_POSTINGS} p ON p.chunk_id = r.chunk_id AND p.term = o.term"
            "), 0) DESC, r.chunk_id LIMIT %(limit)s",
            values,
        )
        return [row[0] for row in cursor.fetchall()]


def exhaustive_search(
    version_id: Any, stats: Statistics, flt: MetadataFilter, limit: int
) -> list[tuple[uuid.UUID, float]]:
    """Exact BM25 over every posting of the query's terms, summed in SQL: the ceiling the
    early stop is measured against."""
    terms = sorted(stats.idf)
    where, params = _named(*_filter_sql(flt, "p"))
    values = {**_scoring(stats, terms), "version": version_id, "limit": limit, **params}
    return _summed_top(f"p.index_version_id = %(version)s{where}", values)
