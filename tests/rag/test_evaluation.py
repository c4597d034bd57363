"""``manage.py rag_eval``: BEIR loading, the metrics, and a run on the fixture dataset."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from rag.evaluation import load_beir, mrr_at, ndcg_at, overlap_at, recall_at
from rag.models import Document, IndexVersion

FIXTURE = Path(__file__).parent / "beir_fixture"


def test_ndcg_uses_graded_gains_and_the_ideal_order():
    judged = {"a": 2, "b": 1}
    assert ndcg_at(["a", "b", "x"], judged) == pytest.approx(1.0)
    swapped = (1 / 1 + 2 / math.log2(3)) / (2 / 1 + 1 / math.log2(3))
    assert ndcg_at(["b", "a"], judged) == pytest.approx(swapped)
    assert ndcg_at(["x", "y"], judged) == 0.0


def test_recall_counts_relevant_documents_in_the_cut():
    judged = {"a": 1, "b": 1, "c": 0}
    assert recall_at(["a", "x", "c"], judged, 100) == 0.5
    assert recall_at(["x"] * 100 + ["a"], judged, 100) == 0.0


def test_mrr_is_the_inverse_rank_of_the_first_relevant_document():
    assert mrr_at(["x", "y", "a"], {"a": 1}) == pytest.approx(1 / 3)
    assert mrr_at(["x"] * 10 + ["a"], {"a": 1}) == 0.0


def test_ann_overlap_compares_the_top_k_sets():
    assert overlap_at([1, 2, 3, 9], [1, 2, 3, 4], 4) == 0.75


def test_the_fixture_is_a_valid_beir_dataset():
    dataset = load_beir(FIXTURE)
    assert dataset.corpus_size() == 30
    assert len(dataset.queries) == 12 and dataset.qrels["q01"] == {"d01": 2, "d02": 1}


def test_a_directory_without_qrels_is_refused(tmp_path):
    (tmp_path / "corpus.jsonl").write_text("")
    with pytest.raises(CommandError, match=r"missing queries\.jsonl, qrels/test\.tsv"):
        call_command("rag_eval", str(tmp_path))


@pytest.mark.django_db
def test_rag_eval_scores_the_fixture_end_to_end_and_reruns_incrementally():
    out, err = io.StringIO(), io.StringIO()
    call_command("rag_eval", str(FIXTURE), "--json", stdout=out, stderr=err)
    summary = json.loads(out.getvalue())
    assert summary["queries"] == 12 and summary["documents"] == 30
    assert summary["ndcg_at_10"] > 0.75
    assert summary["mrr_at_10"] > 0.8
    assert summary["recall_at_100"] == 1.0
    assert summary["hnsw_recall_at_10"] == 1.0
    assert "store corpus" in err.getvalue() and "queries" in err.getvalue()

    documents = dict(Document.objects.values_list("external_id", "updated_at"))
    versions = list(IndexVersion.objects.values_list("pk", "status"))
    again = io.StringIO()
    call_command("rag_eval", str(FIXTURE), stdout=again, stderr=io.StringIO())
    assert "nDCG@10" in again.getvalue() and "HNSW recall@10 vs exact" in again.getvalue()
    assert dict(Document.objects.values_list("external_id", "updated_at")) == documents
    assert list(IndexVersion.objects.values_list("pk", "status")) == versions
