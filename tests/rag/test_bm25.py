"""BM25 from packed keyword lists: exact scores, statistics kept by the database, stale lists
never read, scoping, and the top-k against the exhaustive SQL sum."""

from __future__ import annotations

import math
import random
import threading

import pytest
from django.db import connection, transaction

from rag import bm25, indexing, services
from rag.errors import InvalidRetrievalConfig
from rag.filters import MetadataFilter, parse_filters
from rag.models import Chunk, Document, KeywordDocument, KeywordIndex, KeywordList, KeywordTerm
from rag.search import RetrievalConfig

from .embedders import hash_vector
from .factories import make_endpoint, make_source, push

pytestmark = pytest.mark.django_db

VECTOR = hash_vector("bm25")


def _version_with(tenant, texts: dict[str, str], **endpoint_fields):
    """A building version holding one chunk per text (title empty), written like a build."""
    source = make_source(tenant)
    endpoint = make_endpoint(tenant, source, **endpoint_fields)
    version = indexing.create_version(endpoint)
    add_chunks(version, source, texts)
    return version, source


def add_chunks(version, source, texts: dict[str, str]) -> None:
    records = []
    for name, text in texts.items():
        document = Document.objects.create(
            tenant_id=version.tenant_id, source=source, external_id=name, content_hash=name
        )
        records.append(
            (version.tenant_id, version.pk, document.pk, 0, "", text, 3, name, name,
             {"name": name, "group": len(records) % 2}, VECTOR)
        )  # fmt: skip
    indexing.write_chunks(records)


def names(hits) -> list[str]:
    ids = [chunk_id for chunk_id, _ in hits]
    external = dict(Chunk.objects.filter(pk__in=ids).values_list("pk", "document__external_id"))
    return [external[i] for i in ids]


TINY = {
    "d1": "cats chase mice",  # cat, chase, mice: dl 3
    "d2": "cats cats sleep",  # cat x2, sleep: dl 3
    "d3": "dogs chase cats daily",  # dog, chase, cat, daili: dl 4
    "d4": "birds sing",  # bird, sing: dl 2
}


def test_scores_match_a_hand_computed_bm25(tenant):
    version, _ = _version_with(tenant, TINY)
    hits, _ = bm25.search(version, "Cat chasing", MetadataFilter(), 10)
    # N = 4, avgdl = 12 / 4 = 3, k1 = 1.2, b = 0.75; df(cat) = 3, df(chase) = 2.
    idf_cat, idf_chase = math.log(1 + 1.5 / 3.5), math.log(1 + 2.5 / 2.5)
    # tf component: tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * dl / 3)).
    expected = {
        "d1": 1.0 * idf_cat + 1.0 * idf_chase,
        "d2": 1.375 * idf_cat,
        "d3": 0.88 * idf_cat + 0.88 * idf_chase,
    }
    assert names(hits) == ["d1", "d3", "d2"]
    assert [score for _, score in hits] == pytest.approx(
        [expected["d1"], expected["d3"], expected["d2"]], rel=1e-12
    )


def test_a_list_is_packed_once_and_repacked_when_its_postings_change(tenant):
    version, source = _version_with(tenant, TINY)
    bm25.search(version, "cat", MetadataFilter(), 10)
    cat = KeywordList.objects.get(index_version=version, term="cat")
    assert cat.generation == KeywordTerm.objects.get(index_version=version, term="cat").generation

    add_chunks(version, source, {"d5": "a cat naps"})
    hits, _ = bm25.search(version, "cat", MetadataFilter(), 10)
    assert names(hits) == ["d2", "d5", "d1", "d3"]
    repacked = KeywordList.objects.get(index_version=version, term="cat")
    assert repacked.generation > cat.generation
    assert len(bytes(repacked.numbers)) == 4 * 4  # four chunks hold "cat", an int4 each


def test_a_list_stamped_with_another_generation_is_never_read(tenant):
    version, _ = _version_with(tenant, TINY)
    bm25.search(version, "cat", MetadataFilter(), 10)
    bm25._kept.clear()  # this process read it: the stored row is what is under test
    # A list packed from an older snapshot, stored after a newer one was: wrong content.
    KeywordList.objects.filter(index_version=version, term="cat").update(
        generation=0, numbers=b"\x00\x00\x00\x03", frequencies=b"\x00\x09", lengths=b"\x00\x02"
    )
    hits, _ = bm25.search(version, "cat", MetadataFilter(), 10)
    assert names(hits) == ["d2", "d1", "d3"]


@pytest.mark.django_db(transaction=True)
def test_a_list_packed_beside_an_uncommitted_write_is_not_read_once_it_commits(tenant):
    version, source = _version_with(tenant, TINY)
    written, commit = threading.Event(), threading.Event()

    def write() -> None:
        try:
            with transaction.atomic():
                add_chunks(version, source, {"d5": "a cat naps"})
                written.set()
                commit.wait(10)
        finally:
            connection.close()

    writer = threading.Thread(target=write)
    writer.start()
    assert written.wait(10)
    # Packed from a snapshot without d5, and stored.
    assert names(bm25.search(version, "cat", MetadataFilter(), 10)[0]) == ["d2", "d1", "d3"]
    commit.set()
    writer.join(10)
    assert names(bm25.search(version, "cat", MetadataFilter(), 10)[0]) == ["d2", "d5", "d1", "d3"]


def test_a_build_packs_every_term(tenant):
    source = make_source(tenant)
    push(source, "a.md", "# Cats\n\nCats chase mice and dogs chase cats.\n")
    endpoint = make_endpoint(tenant, source)
    services.reindex(endpoint)
    endpoint.refresh_from_db()
    version = endpoint.live_version
    assert KeywordList.objects.filter(index_version=version).count() > 3
    assert bm25.stale_terms(version.pk) == []


def test_adding_and_deleting_chunks_keeps_n_df_and_avgdl(tenant):
    version, source = _version_with(tenant, TINY)
    stats = KeywordIndex.objects.get(index_version=version)
    assert (stats.chunks, stats.total_length, stats.numbered) == (4, 12, 4)
    bm25.search(version, "chase mice dog", MetadataFilter(), 10)  # packs three lists

    add_chunks(version, source, {"d5": "a cat naps"})  # cat, nap: dl 2
    Chunk.objects.filter(document__external_id="d1").delete()
    Document.objects.filter(external_id="d3").delete()  # its chunk goes by cascade

    stats.refresh_from_db()
    df = dict(KeywordTerm.objects.filter(index_version=version).values_list("term", "documents"))
    assert (stats.chunks, stats.total_length) == (3, 3 + 2 + 2)
    assert df == {"cat": 2, "sleep": 1, "bird": 1, "sing": 1, "nap": 1}
    assert stats.numbered == 5  # numbers are never reused
    assert KeywordDocument.objects.filter(index_version=version).count() == 3
    # The lists of terms no chunk holds any more went with their last postings.
    assert not KeywordList.objects.filter(index_version=version, term__in=["chase", "mice", "dog"])
    hits, _ = bm25.search(version, "cat", MetadataFilter(), 10)
    avgdl, idf_cat = 7 / 3, math.log(1 + 1.5 / 2.5)
    d5 = idf_cat * 2.2 / (1 + 1.2 * (0.25 + 0.75 * 2 / avgdl))
    assert names(hits) == ["d2", "d5"] and hits[1][1] == pytest.approx(d5, rel=1e-12)


def test_the_keyword_side_applies_filters(tenant):
    version, _ = _version_with(tenant, TINY)
    hits, _ = bm25.search(version, "cats", parse_filters({"group": 1}), 10)
    assert names(hits) == ["d2"]


def test_another_tenants_matching_chunk_is_never_returned(tenant, other_tenant):
    mine = make_endpoint(tenant, make_source(tenant), retrieval_config={"mode": "keyword"})
    theirs_source = make_source(other_tenant)
    push(theirs_source, "secret.md", "# Zanzibar\n\nThe zanzibar launch code is 1234.\n")
    services.reindex(make_endpoint(other_tenant, theirs_source))
    push(mine.sources.get(), "plain.md", "# Plain\n\nNothing about islands here.\n")
    services.reindex(mine)
    mine.refresh_from_db()
    assert services.query(mine, "zanzibar launch code").results == []


WORDS = [f"w{n}" for n in range(400)]


def zipf_text(rng: random.Random, words: int) -> str:
    weights = [1 / (rank + 1) for rank in range(len(WORDS))]
    return " ".join(rng.choices(WORDS, weights=weights, k=words))


def test_a_selective_filter_looks_past_the_first_candidates(tenant):
    texts = {f"c{n}": "cats " * (20 - n) + "sleep" for n in range(20)}  # c0 ranks first
    version, _ = _version_with(tenant, texts)
    # Only odd chunks are in group 1 (see add_chunks): one passes among the first four.
    hits, _ = bm25.search(version, "cats", parse_filters({"group": 1, "name": "c19"}), 1)
    assert names(hits) == ["c19"]


@pytest.mark.parametrize("kept_mb", [256, 0])
@pytest.mark.parametrize("filters", [{}, {"group": 1}])
def test_the_top_k_equals_the_exhaustive_sum(tenant, filters, kept_mb, settings):
    rag = getattr(settings, "AUTOMATE_RAG", {})
    settings.AUTOMATE_RAG = {**rag, "KEYWORD_LIST_CACHE_MB": kept_mb}
    rng = random.Random(5)
    texts = {f"c{n}": zipf_text(rng, rng.randint(5, 40)) for n in range(300)}
    # Identical chunks score alike to the last bit: their order is the chunk ids'.
    texts.update({f"twin{n}": "w1 w2 w3 w7" for n in range(12)})
    # A long chunk repeating a word: its list's (tf, dl) pairs are too many to tabulate whole.
    texts["echo"] = "w5 " * 300 + "w3 " * 260
    version, source = _version_with(tenant, texts)
    # More chunks later, longer ones: avgdl moves after the first lists were packed.
    bm25.search(version, "w1 w2", MetadataFilter(), 5)
    add_chunks(version, source, {f"x{n}": zipf_text(rng, 60) for n in range(60)})
    flt = parse_filters(filters)
    for text in ["w1 w3 w7", *(zipf_text(rng, 3) for _ in range(40))]:
        hits, how = bm25.search(version, text, flt, 5)
        stats = bm25.statistics(version.pk, text)
        assert stats is not None
        exact = bm25.exhaustive_search(version.pk, stats, flt, 50)
        # SQL adds a chunk's terms in whatever order its plan reads them: the last bit of a
        # score may differ, so ties are scores equal to 12 digits, ordered by chunk id.
        assert [c for c, _ in hits] == [c for c, _ in ranked(exact)[:5]], text
        assert [s for _, s in hits] == pytest.approx([s for _, s in ranked(exact)[:5]], rel=1e-12)
        assert how["exact"] is True


def ranked(hits):
    return sorted(hits, key=lambda hit: (-round(hit[1], 12), hit[0]))


def test_the_endpoints_language_decides_stemming(tenant):
    simple, _ = _version_with(tenant, TINY, retrieval_config={"language": "simple"})
    assert names(bm25.search(simple, "cat", MetadataFilter(), 10)[0]) == []
    assert names(bm25.search(simple, "cats", MetadataFilter(), 10)[0]) == ["d2", "d1", "d3"]


@pytest.mark.parametrize(
    "config",
    [{"bm25_b": 1.5}, {"bm25_k1": -1}, {"language": "english'; --"}, {"keyword_candidates": 0}],
)
def test_retrieval_config_refuses_bad_keyword_settings(config):
    with pytest.raises(InvalidRetrievalConfig):
        RetrievalConfig.from_json(config)


def test_candidate_depths_default_to_candidates_and_cover_top_k():
    assert RetrievalConfig(candidates=30).depths(5) == (30, 30)
    assert RetrievalConfig(keyword_candidates=200, vector_candidates=3).depths(10) == (10, 200)
