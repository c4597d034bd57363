"""Answer passages: a hit with its neighbouring chunks, near-duplicates given to the model once."""

from __future__ import annotations

import uuid

import pytest

from rag import services
from rag.filters import MetadataFilter, parse_filters
from rag.models import Chunk
from rag.passages import for_answer
from rag.search import QueryResult, ResultItem

from .factories import make_endpoint, make_source, push

pytestmark = pytest.mark.django_db

RETURNS = """# Returns

Alpha sentence one is about parcels. Bravo sentence two covers labels. Charlie sentence three \
lists carriers. Delta sentence four names the depot. Echo sentence five gives opening hours. \
Foxtrot sentence six explains refunds.
"""
WHOLE_TEXT = RETURNS.split("\n\n", 1)[1].strip()
POLICY = """# Policy

## Public

Parcels are insured up to five hundred euros.

## Internal

Staff may waive the insurance excess for friends.
"""


@pytest.fixture
def endpoint(tenant):
    """Chunks of two sentences overlapping by one: returns.md has positions 0, 1 and 2."""
    source = make_source(tenant)
    push(source, "returns.md", RETURNS)
    push(source, "returns-copy.md", RETURNS.replace("# Returns", "# Returns (copy)"))
    push(source, "hours.md", "# Hours\n\nThe Lyon shop opens at nine on weekdays.\n")
    push(source, "policy.md", POLICY)
    endpoint = make_endpoint(tenant, source, chunk_tokens=20, chunk_overlap=9)
    services.reindex(endpoint)
    endpoint.refresh_from_db()
    return endpoint


def _chunk(endpoint, external_id: str, position: int) -> Chunk:
    return Chunk.objects.get(
        index_version=endpoint.live_version, document__external_id=external_id, position=position
    )


def _result(endpoint, *chunks: Chunk) -> QueryResult:
    hits = [
        ResultItem(
            chunk_id=c.pk,
            text=c.text,
            title=c.title,
            score=1.0 / (rank + 1),
            document={"id": str(c.document_id), "external_id": c.document.external_id},
            metadata=c.metadata,
            highlights=[],
            position=c.position,
        )
        for rank, c in enumerate(chunks)
    ]
    version = endpoint.live_version
    return QueryResult(hits, {"id": str(version.pk), "number": version.number}, {}, "t", {})


def _passages(
    endpoint, result: QueryResult, filters: MetadataFilter | None = None, **config
) -> list[ResultItem]:
    endpoint.retrieval_config = config
    return for_answer(result, endpoint=endpoint, filters=filters or MetadataFilter()).results


def test_a_hit_is_merged_with_its_neighbours_writing_their_overlap_once(endpoint):
    hit = _chunk(endpoint, "returns.md", 1)

    (passage,) = _passages(endpoint, _result(endpoint, hit), passage_window=1)

    assert passage.text == WHOLE_TEXT
    assert (passage.chunk_id, passage.position) == (hit.pk, 1)


def test_hits_of_one_document_whose_passages_touch_become_one_at_the_better_rank(endpoint):
    first, second = _chunk(endpoint, "returns.md", 2), _chunk(endpoint, "returns.md", 0)

    (passage,) = _passages(endpoint, _result(endpoint, first, second), passage_window=1)

    assert passage.chunk_id == first.pk
    assert passage.text == WHOLE_TEXT


def test_window_zero_gives_the_query_results_unchanged(endpoint):
    result = _result(endpoint, _chunk(endpoint, "returns.md", 1), _chunk(endpoint, "hours.md", 0))

    assert _passages(endpoint, result) == result.results


def test_passages_of_near_identical_documents_are_collapsed_to_the_best_ranked(endpoint):
    copy, original = _chunk(endpoint, "returns-copy.md", 0), _chunk(endpoint, "returns.md", 0)
    hours = _chunk(endpoint, "hours.md", 0)
    result = _result(endpoint, copy, original, hours)

    assert [p.chunk_id for p in _passages(endpoint, result)] == [copy.pk, hours.pk]
    kept = _passages(endpoint, result, collapse_duplicates=False)
    assert [p.chunk_id for p in kept] == [copy.pk, original.pk, hours.pk]


def test_another_tenants_chunks_are_never_merged_in(endpoint, other_tenant):
    hit = _chunk(endpoint, "returns.md", 2)
    foreign = _chunk(endpoint, "returns.md", 2)
    foreign.pk, foreign.tenant, foreign.position = uuid.uuid4(), other_tenant, 3
    foreign.text = "Golf sentence seven is another tenant's secret."
    foreign._state.adding = True
    foreign.save()

    (passage,) = _passages(endpoint, _result(endpoint, hit), passage_window=1)

    assert "secret" not in passage.text
    assert passage.text.endswith("Foxtrot sentence six explains refunds.")


def test_neighbours_the_query_filter_excludes_are_never_merged_in(endpoint):
    public = _chunk(endpoint, "policy.md", 0)
    public_only = parse_filters({"headings": {"$ne": "Internal"}})

    (passage,) = _passages(endpoint, _result(endpoint, public), public_only, passage_window=1)
    (unfiltered,) = _passages(endpoint, _result(endpoint, public), passage_window=1)

    assert passage.text == public.text
    assert "waive" in unfiltered.text
