"""Answer passages: what the model is shown for a question, built from the query's hits.

Two steps, both deterministic and cheap (one query for every neighbour, no model call), set by
the endpoint's ``retrieval_config``:

- ``passage_window`` = w: each hit becomes a passage of its chunk and the chunks of the same
  document up to w positions either side, contiguous with it, taken from the same index
  version, of the same tenant, and passing the query's filter (the access policy's forced
  filters included). Consecutive chunks share text (the chunk overlap): it is written once.
  Hits of one document whose passages touch become one passage, at the better rank.
- ``collapse_duplicates``: a passage whose normalised text equals, or whose word 3-shingles
  overlap by at least :data:`NEAR_DUPLICATE` (Jaccard) with, a better-ranked passage's is
  dropped, so near-identical documents reach the model once.

A passage is the :class:`~rag.search.ResultItem` of its best hit with the text replaced: its
chunk id, position, document and score are that hit's, so citations name it. With a window of
0 and nothing to collapse, the results are the query's own.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

from django.db.models import Q

from rag.filters import MetadataFilter
from rag.models import Chunk, RAGEndpoint
from rag.search import QueryResult, ResultItem, RetrievalConfig

#: Jaccard similarity of word 3-shingles from which two passages count as one.
NEAR_DUPLICATE = 0.9
#: The shortest text two chunks must share to be joined over it (shorter matches are chance).
MIN_OVERLAP_CHARS = 20
_WORDS = re.compile(r"\w+")


def for_answer(
    result: QueryResult, *, endpoint: RAGEndpoint, filters: MetadataFilter
) -> QueryResult:
    """``result`` with its hits turned into passages (see the module docstring)."""
    config = RetrievalConfig.from_json(endpoint.retrieval_config)
    items = list(result.results)
    if config.passage_window and items:
        items = _windows(
            items,
            tenant_id=endpoint.tenant_id,
            version_id=result.index_version["id"],
            window=config.passage_window,
            filters=filters,
        )
    if config.collapse_duplicates:
        items = _distinct(items)
    return dataclasses.replace(result, results=items)


@dataclasses.dataclass
class _Passage:
    item: ResultItem
    document_id: str
    texts: dict[int, str]  # position -> chunk text, contiguous

    @property
    def first(self) -> int:
        return min(self.texts)

    @property
    def last(self) -> int:
        return max(self.texts)


def _windows(
    items: Sequence[ResultItem],
    *,
    tenant_id: Any,
    version_id: Any,
    window: int,
    filters: MetadataFilter,
) -> list[ResultItem]:
    near = Q()
    for item in items:
        near |= Q(
            document_id=item.document["id"],
            position__range=(max(0, item.position - window), item.position + window),
        )
    found: dict[str, dict[int, str]] = {}
    rows = (
        Chunk.objects.for_tenant(tenant_id)
        .filter(near, index_version_id=version_id)
        .values_list("document_id", "position", "text", "metadata")
    )
    for document_id, position, text, metadata in rows:
        if filters.matches(metadata or {}):
            found.setdefault(str(document_id), {})[position] = text

    passages: list[_Passage] = []
    for item in items:
        document_id = str(item.document["id"])
        chunks = {**found.get(document_id, {}), item.position: item.text}
        texts = {item.position: item.text}
        for step in (-1, 1):
            position = item.position + step
            while abs(position - item.position) <= window and position in chunks:
                texts[position] = chunks[position]
                position += step
        passage = _Passage(item, document_id, texts)
        for earlier in passages:
            touching = earlier.first <= passage.last + 1 and passage.first <= earlier.last + 1
            if earlier.document_id == document_id and touching:
                earlier.texts.update(texts)
                break
        else:
            passages.append(passage)
    return [
        dataclasses.replace(p.item, text=_join([p.texts[i] for i in sorted(p.texts)]))
        for p in passages
    ]


def _join(texts: Sequence[str]) -> str:
    """Consecutive chunks as one text, what each repeats of the one before written once."""
    merged = texts[0]
    for text in texts[1:]:
        shared = _overlap(merged, text)
        merged += text[shared:] if shared else "\n\n" + text
    return merged


def _overlap(before: str, after: str) -> int:
    """Length of the longest start of ``after`` that ``before`` ends with, ending between words
    and at least :data:`MIN_OVERLAP_CHARS` long; 0 when there is none."""
    for size in range(min(len(before), len(after)), MIN_OVERLAP_CHARS - 1, -1):
        if (size == len(after) or after[size].isspace()) and before.endswith(after[:size]):
            return size
    return 0


def _distinct(items: Sequence[ResultItem]) -> list[ResultItem]:
    kept: list[tuple[ResultItem, str, set[tuple[str, ...]]]] = []
    for item in items:
        words = _WORDS.findall(item.text.lower())
        normalised = " ".join(words)
        shingles = {tuple(words[i : i + 3]) for i in range(len(words) - 2)}
        if not any(
            normalised == other or _jaccard(shingles, other_shingles) >= NEAR_DUPLICATE
            for _, other, other_shingles in kept
        ):
            kept.append((item, normalised, shingles))
    return [item for item, _, _ in kept]


def _jaccard(a: set[tuple[str, ...]], b: set[tuple[str, ...]]) -> float:
    if not a or not b:
        return 0.0
    return len(a & b) / len(a | b)
