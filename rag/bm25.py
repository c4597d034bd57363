"""BM25 over an index version: postings kept in rows, read at query time as packed lists.

Writing: :func:`index_chunks` gives each new chunk a number (dense within its version, in
:class:`~rag.models.KeywordDocument`) and turns its title and text into postings with Postgres'
own parser (``to_tsvector`` of the version's language: its stemming and stop words), one row per
(chunk, term) with the term's frequency ``tf`` and the chunk's length ``dl`` (terms, stop words
excluded). Statement triggers keep N, the total length and each term's df as postings come and
go (migrations 0002 and 0005), whatever deletes the chunks, and give a term a new ``generation``
(from one sequence, so a value is never reused) each time its postings change.

Reading: :func:`pack` writes each term's postings as one row of three packed arrays (chunk
numbers, tf, dl; :class:`~rag.models.KeywordList`), stamped with the term's generation. A query
fetches the lists of its terms whose stamp matches (packing any that are stale in the same
statement) and scores them with numpy, exactly::

    score(chunk) = sum over query terms t of
        idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
    idf(t) = ln(1 + (N - df + 0.5) / (df + 0.5))

with N, df and avgdl as they are at query time. Every posting of the query's terms counts, so
the top-k is always the exact one, and its cost is a read of contiguous bytes and a few vector
operations per posting instead of a row per posting through the executor. The terms are summed
in term order with the expression of :data:`_WEIGHT_SQL`, so scores equal the SQL sum of
:func:`exhaustive_search` to the last bit where SQL adds a chunk's terms in the same order (its
plan decides), and within rounding otherwise; ties are broken by chunk id.
"""

from __future__ import annotations

import math
import threading
import uuid
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import psycopg
from django.db import connection

from rag.filters import MetadataFilter
from rag.models import (
    Chunk,
    IndexVersion,
    KeywordDocument,
    KeywordIndex,
    KeywordList,
    KeywordPosting,
    KeywordTerm,
)
from rag.pg_settings import session_setting

_CHUNKS = Chunk._meta.db_table
_DOCUMENTS = KeywordDocument._meta.db_table
_INDEX = KeywordIndex._meta.db_table
_LISTS = KeywordList._meta.db_table
_POSTINGS = KeywordPosting._meta.db_table
_TERMS = KeywordTerm._meta.db_table

#: Terms packed per statement by :func:`pack`.
PACK_BATCH = 500
#: A list's (tf, dl) pairs are tabulated whole up to this many (see :class:`_List`).
DENSE_PAIRS = 65_536
#: Candidates checked against a metadata filter in the first round (times the limit); each
#: further round checks this many times more.
FILTER_ROUND = 4


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


def index_chunks(version_id: Any, chunk_ids: Sequence[uuid.UUID]) -> None:
    """Number ``chunk_ids`` (chunks of the version not indexed yet) and write their postings.
    Numbers come from the version's counter, whose row lock serialises writers until commit
    (the statistics triggers take it anyway)."""
    if not chunk_ids:
        return
    index = keyword_index(version_id)
    with connection.cursor() as cursor:
        cursor.execute(
            f"UPDATE {_INDEX} SET numbered = numbered + %s WHERE index_version_id = %s "  # noqa: S608 -- table from _meta, values bound
            "RETURNING numbered",
            [len(chunk_ids), version_id],
        )
        first = cursor.fetchone()[0] - len(chunk_ids)
        cursor.execute(
            f"INSERT INTO {_DOCUMENTS} (chunk_id, index_version_id, number) "  # noqa: S608 -- table from _meta, values bound
            "SELECT id, %s, %s + n - 1 FROM unnest(%s::uuid[]) WITH ORDINALITY AS c(id, n)",
            [version_id, first, list(chunk_ids)],
        )
        cursor.execute(
            "WITH terms AS ("  # noqa: S608 -- tables from _meta, values bound
            "SELECT c.id AS chunk_id, t.lexeme AS term, cardinality(t.positions) AS frequency "
            f"FROM {_CHUNKS} c, unnest(to_tsvector(%(language)s::regconfig, "
            "c.title || ' ' || c.text)) AS t "
            "WHERE c.index_version_id = %(version)s AND c.id = ANY(%(ids)s)), "
            "lengths AS (SELECT chunk_id, sum(frequency)::int AS length FROM terms "
            "GROUP BY chunk_id) "
            f"INSERT INTO {_POSTINGS} (chunk_id, term, index_version_id, frequency, length) "
            "SELECT t.chunk_id, t.term, %(version)s, t.frequency, l.length "
            "FROM terms t JOIN lengths l USING (chunk_id) ORDER BY t.term",
            {"language": index.language, "version": version_id, "ids": list(chunk_ids)},
        )


#: Each term's postings as three arrays in chunk-number order: numbers (int4), tf and dl
#: (int2; a chunk is far shorter than 32,767 terms), big-endian as ``int4send`` writes them.
#: With the term's current generation.
_PACKED = (
    "SELECT t.term, t.generation, "  # noqa: S608 -- tables from _meta, values bound
    "string_agg(int4send(d.number), '' ORDER BY d.number) AS numbers, "
    "string_agg(int2send(p.frequency::int2), '' ORDER BY d.number) AS frequencies, "
    "string_agg(int2send(p.length::int2), '' ORDER BY d.number) AS lengths "
    f"FROM {_TERMS} t JOIN {_POSTINGS} p "
    "ON p.index_version_id = t.index_version_id AND p.term = t.term "
    f"JOIN {_DOCUMENTS} d ON d.chunk_id = p.chunk_id "
    "WHERE t.index_version_id = %(version)s AND t.term = ANY(%(terms)s) "
    "GROUP BY t.term, t.generation"
)
#: Stores what :data:`_PACKED` made unless a newer generation was stored meanwhile.
_STORE = (
    f"INSERT INTO {_LISTS} (index_version_id, term, generation, numbers, frequencies, lengths) "  # noqa: S608 -- table from _meta
    "SELECT %(version)s, term, generation, numbers, frequencies, lengths FROM packed "
    "ON CONFLICT (index_version_id, term) DO UPDATE SET generation = EXCLUDED.generation, "
    "numbers = EXCLUDED.numbers, frequencies = EXCLUDED.frequencies, lengths = EXCLUDED.lengths "
    f"WHERE {_LISTS}.generation < EXCLUDED.generation"
)


def stale_terms(version_id: Any) -> list[str]:
    """The version's terms whose packed list is missing or older than their postings."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT t.term FROM {_TERMS} t LEFT JOIN {_LISTS} l "  # noqa: S608 -- tables from _meta, values bound
            "ON l.index_version_id = t.index_version_id AND l.term = t.term "
            "WHERE t.index_version_id = %s AND t.documents > 0 "
            "AND l.generation IS DISTINCT FROM t.generation ORDER BY t.term",
            [version_id],
        )
        return [row[0] for row in cursor.fetchall()]


def pack(version_id: Any, progress: Callable[[int, int], None] | None = None) -> int:
    """Pack every stale term of the version (after a build or a sync, so queries find their
    lists ready); ``progress(done, total)`` after each batch. Returns how many were packed."""
    from rag.conf import rag_settings

    terms = stale_terms(version_id)
    with session_setting("work_mem", str(rag_settings.KEYWORD_WORK_MEM)):
        for start in range(0, len(terms), PACK_BATCH):
            with connection.cursor() as cursor:
                cursor.execute(
                    f"WITH packed AS ({_PACKED}) {_STORE}",
                    {"version": version_id, "terms": terms[start : start + PACK_BATCH]},
                )
            if progress:
                progress(min(len(terms), start + PACK_BATCH), len(terms))
    return len(terms)


# -- scoring ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Statistics:
    """What scoring a query needs: k1, b, avgdl, how many numbers the version has handed out,
    and each query term's idf and generation (terms with no postings dropped)."""

    k1: float
    b: float
    avgdl: float
    numbered: int
    idf: dict[str, float]
    generations: dict[str, int]


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
            "SELECT k.k1, k.b, k.chunks, k.total_length, k.numbered, t.term, t.documents, "  # noqa: S608 -- tables from _meta, values bound
            f"t.generation FROM {_INDEX} k CROSS JOIN LATERAL unnest(tsvector_to_array("
            "to_tsvector(k.language::regconfig, %s))) AS q(term) "
            f"JOIN {_TERMS} t ON t.index_version_id = k.index_version_id AND t.term = q.term "
            "WHERE k.index_version_id = %s AND t.documents > 0 AND k.chunks > 0",
            [text, version_id],
        )
        rows = cursor.fetchall()
    if not rows:
        return None
    k1, b, chunks, total, numbered = rows[0][:5]
    return Statistics(
        k1=k1,
        b=b,
        avgdl=total / chunks,
        numbered=numbered,
        idf={row[5]: idf(chunks, row[6]) for row in rows},
        generations={row[5]: row[7] for row in rows},
    )


@dataclass(frozen=True)
class _List:
    """A term's packed list, ready to score: chunk numbers, and per posting the index of its
    (tf, dl) pair among the list's distinct pairs, whose weights a query computes once each."""

    numbers: np.ndarray  # int32, ascending
    pairs: np.ndarray  # int32 per posting: an index into tf and dl
    tf: np.ndarray  # float64 per distinct pair
    dl: np.ndarray  # float64 per distinct pair

    @classmethod
    def unpack(cls, numbers: bytes, frequencies: bytes, lengths: bytes) -> _List:
        tf = np.frombuffer(frequencies, dtype=">i2").astype(np.int32)
        dl = np.frombuffer(lengths, dtype=">i2").astype(np.int32)
        width = int(dl.max(initial=0)) + 1
        height = int(tf.max(initial=0)) + 1
        if height * width <= DENSE_PAIRS:
            # Every pair up to the largest tf and dl (the usual case: no sort needed).
            pairs = tf * width + dl
            distinct_tf, distinct_dl = np.divmod(np.arange(height * width), width)
        else:  # a long chunk repeating a word: only the pairs that occur
            distinct, inverse = np.unique(tf.astype(np.int64) << 16 | dl, return_inverse=True)
            pairs = inverse.astype(np.int32)
            distinct_tf, distinct_dl = distinct >> 16, distinct & 0xFFFF
        return cls(
            numbers=np.frombuffer(numbers, dtype=">i4").astype(np.int32),
            pairs=pairs,
            tf=distinct_tf.astype(np.float64),
            dl=distinct_dl.astype(np.float64),
        )

    @property
    def nbytes(self) -> int:
        return self.numbers.nbytes + self.pairs.nbytes + self.tf.nbytes + self.dl.nbytes


class _Kept:
    """Lists this process has read, by (version, term, generation), least recently used out
    past ``KEYWORD_LIST_CACHE_MB``. A generation is drawn once, from a sequence, so a kept
    list is exactly the stored row it was read from: it is never stale, only unused."""

    def __init__(self) -> None:
        self._lists: OrderedDict[tuple[str, str, int], _List] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, key: tuple[str, str, int]) -> _List | None:
        with self._lock:
            found = self._lists.get(key)
            if found is not None:
                self._lists.move_to_end(key)
            return found

    def put(self, key: tuple[str, str, int], packed: _List, capacity: int) -> None:
        with self._lock:
            if key in self._lists or packed.nbytes > capacity:
                return
            self._lists[key] = packed
            self._bytes += packed.nbytes
            while self._bytes > capacity:
                _, dropped = self._lists.popitem(last=False)
                self._bytes -= dropped.nbytes

    def clear(self) -> None:
        with self._lock:
            self._lists.clear()
            self._bytes = 0


_kept = _Kept()


def _lists(version_id: Any, stats: Statistics) -> dict[str, _List]:
    """The query terms' packed lists: kept ones, then stored ones whose generation is the
    term's, then the others packed now (and stored for the next query). Fetched in binary:
    no hex text to decode."""
    from rag.conf import rag_settings

    capacity = int(rag_settings.KEYWORD_LIST_CACHE_MB) * 2**20
    key = {t: (str(version_id), t, stats.generations[t]) for t in stats.idf}
    lists = {t: found for t in sorted(key) if (found := _kept.get(key[t])) is not None}
    missing = sorted(set(key) - set(lists))
    if not missing:
        return lists
    rows: dict[str, tuple[Any, ...]] = {}
    connection.ensure_connection()
    with psycopg.Cursor(connection.connection) as cursor:
        cursor.execute(
            f"SELECT term, numbers, frequencies, lengths FROM {_LISTS} "  # noqa: S608 -- table from _meta, values bound
            "WHERE index_version_id = %s AND term = ANY(%s) AND generation = ANY(%s)",
            [version_id, missing, [stats.generations[t] for t in missing]],
            binary=True,
        )
        # A generation of another term can never match: each value is drawn once.
        rows.update({row[0]: row for row in cursor.fetchall()})
        stale = [t for t in missing if t not in rows]
        if stale:
            cursor.execute(
                f"WITH packed AS ({_PACKED}), stored AS ({_STORE}) "  # noqa: S608 -- constants
                "SELECT term, numbers, frequencies, lengths, generation FROM packed",
                {"version": version_id, "terms": stale},
                binary=True,
            )
            # Packed from this statement's snapshot: kept under the generation it saw.
            for term, *packed, generation in cursor.fetchall():
                rows[term] = (term, *packed)
                key[term] = (str(version_id), term, generation)
    for term, (_, numbers, frequencies, lengths) in rows.items():
        lists[term] = _List.unpack(numbers, frequencies, lengths)
        _kept.put(key[term], lists[term], capacity)
    return lists


def _scores(stats: Statistics, lists: dict[str, _List]) -> np.ndarray:
    """Every chunk's score, indexed by number: the terms added in term order, each weight with
    :data:`_WEIGHT_SQL`'s operations in its order (see the module docstring).
    A term's weight takes one value per (tf, dl) pair: computed once per pair, looked up per
    posting."""
    k1, b, avgdl = stats.k1, stats.b, stats.avgdl
    # A list packed by this query reads a later snapshot than the statistics: it may hold a
    # chunk numbered since (numbers come sorted, so the last is the largest).
    last = max((int(p.numbers[-1]) for p in lists.values() if len(p.numbers)), default=-1)
    scores = np.zeros(max(stats.numbered, last + 1))
    for term in sorted(lists):
        packed = lists[term]
        tf, dl = packed.tf, packed.dl
        weights = stats.idf[term] * tf * (k1 + 1) / (tf + k1 * (1 - b + b * dl / avgdl))
        scores[packed.numbers] += weights[packed.pairs]
    return scores


def _best_numbers(scores: np.ndarray, count: int) -> np.ndarray:
    """At least the ``count`` best chunk numbers with a score, best first (ties by number):
    every chunk tied with the ``count``-th is included, so the caller can break ties by chunk
    id, which numbers do not follow."""
    matched = np.count_nonzero(scores)
    if matched <= count:
        best = np.flatnonzero(scores)
    else:
        kth = np.partition(scores, len(scores) - count)[len(scores) - count]
        best = np.flatnonzero(scores >= kth)
    return best[np.lexsort((best, -scores[best]))]


def _chunk_ids(version_id: Any, numbers: np.ndarray, flt: MetadataFilter) -> dict[int, uuid.UUID]:
    """The chunk id of each number (among chunks matching ``flt``)."""
    where, params = flt.to_sql("c.metadata") if flt else ("", [])
    join = f" JOIN {_CHUNKS} c ON c.id = d.chunk_id AND {where}" if flt else ""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT d.number, d.chunk_id FROM {_DOCUMENTS} d{join} "  # noqa: S608 -- tables from _meta, values bound
            "WHERE d.index_version_id = %s AND d.number = ANY(%s)",
            [*params, version_id, numbers.tolist()],
        )
        return dict(cursor.fetchall())


def search(
    version: IndexVersion, text: str, flt: MetadataFilter, limit: int
) -> tuple[list[tuple[uuid.UUID, float]], dict[str, Any]]:
    """The ``limit`` best chunks by BM25 (ties by chunk id), with how they were found.

    Every posting of the query's terms is scored, from the packed lists. The best are mapped
    to chunk ids; with a metadata filter, candidates are checked best first, ``FILTER_ROUND``
    times the limit at a time and more each round, until ``limit`` pass or none is left.
    """
    stats = statistics(version.pk, text)
    how: dict[str, Any] = {"keyword": "bm25", "terms": len(stats.idf) if stats else 0}
    if stats is None:
        return [], how
    lists = _lists(version.pk, stats)
    scores = _scores(stats, lists)
    how["postings"] = sum(len(packed.numbers) for packed in lists.values())
    found: list[tuple[uuid.UUID, float]] = []
    checked, want = 0, limit if not flt else FILTER_ROUND * limit
    while len(found) < limit:
        best = _best_numbers(scores, want)
        batch = best[checked:]
        if not len(batch):
            break
        ids = _chunk_ids(version.pk, batch, flt)
        found.extend((ids[n], float(scores[n])) for n in batch.tolist() if n in ids)
        checked, want = len(best), want * FILTER_ROUND * 4
    return sorted(found, key=lambda item: (-item[1], item[0]))[:limit], {**how, "exact": True}


def exhaustive_search(
    version_id: Any, stats: Statistics, flt: MetadataFilter, limit: int
) -> list[tuple[uuid.UUID, float]]:
    """Exact BM25 over every posting of the query's terms, summed in SQL row by row: the
    reference the packed lists are checked and measured against."""
    terms = sorted(stats.idf)
    where, params = flt.to_sql("c.metadata") if flt else ("", [])
    exists = (
        f" AND EXISTS (SELECT 1 FROM {_CHUNKS} c WHERE c.id = p.chunk_id AND {where})"  # noqa: S608 -- table from _meta, values bound
        if flt
        else ""
    )
    values = {
        "k1": stats.k1,
        "b": stats.b,
        "avgdl": stats.avgdl,
        "terms": terms,
        "idf": [stats.idf[t] for t in terms],
        "version": version_id,
        "limit": limit,
    }
    named, filter_values = _named(exists, params)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT p.chunk_id, sum({_WEIGHT_SQL}) AS score "  # noqa: S608 -- table from _meta, values bound
            "FROM unnest(%(terms)s::text[], %(idf)s::float8[]) AS q(term, idf) "
            f"JOIN {_POSTINGS} p ON p.index_version_id = %(version)s AND p.term = q.term{named} "
            "GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(limit)s",
            {**values, **filter_values},
        )
        return [(i, float(s)) for i, s in cursor.fetchall()]


def _named(where: str, params: list[Any]) -> tuple[str, dict[str, Any]]:
    """A filter's positional placeholders as named ones (``%(f0)s``...), to sit beside others."""
    parts = where.split("%s")
    named = "".join(f"{part}%(f{n})s" for n, part in enumerate(parts[:-1])) + parts[-1]
    return named, {f"f{n}": value for n, value in enumerate(params)}
