"""``manage.py rag_eval --sweep``: one row per fusion setting, beside the baselines."""

from __future__ import annotations

import io
import re
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

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
    grid = [label for label in rows if label.startswith("hybrid ")]
    assert len(grid) == 2 * 2 * 2 and set(rows) == {*grid, *BASELINES}
    assert all(0.0 <= value <= 1.0 for value in rows.values())
    # Hash vectors carry no meaning: the word-matching rankings do the work.
    assert rows["keyword only (BM25)"] > 0.6 and rows["rank_bm25 BM25Okapi"] > 0.6
    # A zero vector weight keeps BM25's order and only appends (score 0) vector hits after it.
    assert rows["hybrid rrf_k=60 vector=0 keyword=1 candidates=50"] >= rows["keyword only (BM25)"]


def test_a_sweep_grid_out_of_range_is_refused():
    with pytest.raises(CommandError, match="bad sweep grid"):
        call_command("rag_eval", str(FIXTURE), "--sweep", "--rrf-k", "0")
