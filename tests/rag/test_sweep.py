"""``manage.py rag_eval --sweep``: one row per fusion setting, beside the baselines."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rag import search
from rag.errors import InvalidRetrievalConfig
from rag.evaluation import fusion_grid
from rag.search import RetrievalConfig

FIXTURE = Path(__file__).parent / "beir_fixture"
BASELINES = [
    "vector only",
    "keyword only (BM25)",
    "rank_bm25 BM25Okapi",
    "RRF of vector + BM25Okapi",
]


@pytest.mark.django_db
def test_the_sweep_prints_a_row_per_grid_point_and_the_baselines():
    out = io.StringIO()
    call_command(
        "rag_eval", str(FIXTURE), "--sweep", "--provider", "counting", "--rrf-k", "10,60",
        "--weights", "1:1,0:1", "--candidates", "5,50", stdout=out, stderr=io.StringIO(),
    )  # fmt: skip
    rows = dict(
        (label.strip(), float(value))
        for label, value in re.findall(r"^  (.+?)\s+(\d\.\d{4})$", out.getvalue(), re.M)
    )
    rrf = [label for label in rows if label.startswith("hybrid rrf ")]
    convex = [label for label in rows if label.startswith("hybrid convex ")]
    # rrf: 2 k x 2 weights x 2 depths; convex has no k: 2 weights x 2 depths.
    assert len(rrf) == 8 and len(convex) == 4 and set(rows) == {*rrf, *convex, *BASELINES}
    assert "hybrid convex vector=1 keyword=1 candidates=50" in convex
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    # Hash vectors carry no meaning: the word-matching rankings do the work.
    assert rows["keyword only (BM25)"] > 0.6 and rows["rank_bm25 BM25Okapi"] > 0.6
    # A zero vector weight keeps BM25's order and only appends (score 0) vector hits after it.
    assert (
        rows["hybrid rrf rrf_k=60 vector=0 keyword=1 candidates=50"] >= rows["keyword only (BM25)"]
    )


def test_the_sweep_covers_only_the_fusion_methods_asked_for():
    grid = fusion_grid(fusions=["rrf"], rrf_ks=[60], weights=[(1.0, 1.0)], candidates=[50])
    assert [s.label for s in grid] == ["hybrid rrf rrf_k=60 vector=1 keyword=1 candidates=50"]
    assert grid[0].config().fusion == "rrf"


def test_convex_fusion_adds_weighted_min_max_normalised_scores():
    # Vector distances 0.125, 0.25, 0.625 -> similarity normalised 1, 0.75, 0;
    # BM25 6, 4, 2 -> 1, 0.5, 0; a side that did not return a chunk adds 0.
    vector, keyword = [(1, 0.125), (2, 0.25), (3, 0.625)], [(2, 6.0), (4, 4.0), (1, 2.0)]
    fused = search.fuse(vector, keyword, RetrievalConfig(fusion="convex"))
    assert {c.chunk_id: c.score for c in fused} == pytest.approx({1: 1.0, 2: 1.75, 3: 0.0, 4: 0.5})
    assert [c.chunk_id for c in fused] == [2, 1, 4, 3]
    weighted = search.fuse(vector, keyword, RetrievalConfig(vector_weight=2, keyword_weight=0.5))
    assert {c.chunk_id: c.score for c in weighted} == pytest.approx(
        {1: 2.0, 2: 2.0, 3: 0.0, 4: 0.25}
    )
    assert [c.chunk_id for c in weighted] == [1, 2, 4, 3]  # a tie goes by chunk id


def test_convex_fusion_of_one_candidate_or_equal_scores_gives_that_side_full_weight():
    fused = search.fuse([(7, 0.3)], [(8, 2.0), (9, 2.0)], RetrievalConfig(fusion="convex"))
    assert {c.chunk_id: c.score for c in fused} == {7: 1.0, 8: 1.0, 9: 1.0}
    assert [c.chunk_id for c in fused] == [7, 8, 9]
    assert search.fuse([], [], RetrievalConfig()) == []


def test_at_equal_scores_a_chunk_both_sides_found_comes_first():
    # 1: vector best (1 + 0); 2: vector worst, the only keyword hit (0 + 1).
    fused = search.fuse([(1, 0.1), (2, 0.5)], [(2, 3.0)], RetrievalConfig(fusion="convex"))
    assert [(c.chunk_id, c.score) for c in fused] == [(2, 1.0), (1, 1.0)]


def test_an_unknown_fusion_method_is_refused():
    with pytest.raises(InvalidRetrievalConfig, match="fusion"):
        RetrievalConfig.from_json({"fusion": "max"})


def test_a_sweep_grid_out_of_range_is_refused():
    with pytest.raises(CommandError, match="bad sweep grid"):
        call_command("rag_eval", str(FIXTURE), "--sweep", "--rrf-k", "0")
