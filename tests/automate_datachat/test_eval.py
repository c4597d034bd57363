"""``manage.py datachat_eval``: execution accuracy on the shipped Spider-format fixture, with a
model (the OpenAI wire double) scripted to answer some questions with the gold SQL."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from django.core.management import call_command

from automate_datachat import evaluation
from automate_llm.testing import Reply
from automate_llm.testing.providers import MODELS

pytestmark = pytest.mark.django_db

FIXTURE = Path(__file__).parent / "eval"
QUESTIONS = json.loads((FIXTURE / "questions.json").read_text())


def test_the_printed_accuracy_counts_the_questions_answered_with_equal_rows(
    shop_tenants, shop_dataset, openai_wire, make_wire_provider, no_backoff
):
    make_wire_provider(
        openai_wire, tenant_=shop_tenants[0], is_default=True, default_model=MODELS["openai"]
    )
    # Gold SQL for the even questions; for the odd ones a valid query with other rows, but
    # question 2 (counts per country) gets them in another order, which still counts (no
    # ORDER BY in its gold query), and question 3 (ordered) the same rows reversed, which not.
    right = {0, 1, 2, 4, 6, 8, 10}
    for number, item in enumerate(QUESTIONS):
        sql = item["query"] if number in right else "SELECT 42 AS wrong"
        if number == 1:
            sql = "SELECT country, count(*) FROM customers GROUP BY country ORDER BY 2, 1"
        if number == 2:
            sql = "SELECT DISTINCT country FROM customers ORDER BY country DESC"
        openai_wire.script(Reply(output={"sql": sql, "explanation": "", "chart": None}))
    out = io.StringIO()
    call_command(
        "datachat_eval", str(FIXTURE), tenant=shop_tenants[0].slug, stdout=out, stderr=io.StringIO()
    )
    lines = out.getvalue().splitlines()
    marks = [line.split()[0] for line in lines[:-1]]
    assert marks == ["ok" if n in right - {2} else "--" for n in range(len(QUESTIONS))]
    assert lines[-1] == f"Execution accuracy: 6/{len(QUESTIONS)} (50.0%)"


def test_numbers_compare_by_value_and_unordered_rows_as_multisets():
    from decimal import Decimal

    from automate_datachat.results import QueryResult

    def result(rows):
        return QueryResult([], rows, len(rows), False, "", 0.0)

    gold, other = result([(1, Decimal("3.00")), (2, Decimal("1"))]), result([(2, 1), (1, 3)])
    assert evaluation.same_rows(gold, other, ordered=False)
    assert not evaluation.same_rows(gold, other, ordered=True)
    assert not evaluation.same_rows(gold, result([(1, 3)]), ordered=False)
