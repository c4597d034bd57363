"""Execution accuracy of NL→SQL on a Spider-format set (``manage.py datachat_eval``).

A question counts as correct when the rows of the SQL the model wrote (through
:func:`automate_datachat.services.ask`: the dataset's prompt, the guard, one repair) equal the
rows of the gold SQL run through the same guard on the same tenant: as lists when the gold
query has a top-level ORDER BY, else as multisets. Column names are ignored; numbers compare
by value (``3`` equals ``3.00``).

What a directory holds (docs/datachat.md "Evaluating NL→SQL"):

- ``questions.json`` (or Spider's ``dev.json``): a list of ``{"question", "query", "db_id"}``;
- ``datasets.json`` (optional): ``{"<db_id>": "<dataset slug>"}``; each ``db_id`` is asked as
  that data chat dataset of the tenant. Spider's SQLite databases and SQL scripts are not
  loaded: load the tables into Postgres and define a dataset over them.
"""

from __future__ import annotations

import json
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot.errors import SqlglotError

from automate_core.errors import AutomateError, InvalidInputError
from automate_core.tracing import new_trace_id
from automate_datachat import services
from automate_datachat.results import QueryResult, json_value

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

ACTOR = "datachat_eval"
QUESTION_FILES = ("questions.json", "dev.json")


@dataclass(frozen=True)
class EvalQuestion:
    question: str
    gold_sql: str
    db_id: str


@dataclass(frozen=True)
class Outcome:
    question: EvalQuestion
    correct: bool
    #: The SQL that ran for the model's answer ("" when it failed twice).
    predicted_sql: str = ""
    #: The error code when the model's SQL was refused or failed twice.
    error: str = ""


def load_questions(directory: Path) -> list[EvalQuestion]:
    """The questions of ``directory`` (see the module docstring)."""
    for name in QUESTION_FILES:
        path = directory / name
        if path.is_file():
            break
    else:
        raise InvalidInputError(f"{directory} has no {' or '.join(QUESTION_FILES)}.")
    items = json.loads(path.read_text())
    try:
        return [EvalQuestion(item["question"], item["query"], item["db_id"]) for item in items]
    except (KeyError, TypeError) as exc:
        raise InvalidInputError(
            f"{path}: each item needs question, query and db_id ({exc})."
        ) from exc


def load_dataset_map(directory: Path) -> dict[str, str]:
    """``datasets.json`` of ``directory``, or nothing."""
    path = directory / "datasets.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def evaluate(
    *, tenant: Tenant, dataset: str, question: EvalQuestion, model: str | None = None
) -> Outcome:
    """Ask ``question`` of ``dataset`` and compare the rows with the gold SQL's. The gold SQL
    must run (a failure is raised: the set is broken); the model's failing twice is a miss."""
    gold = services.run_sql(tenant=tenant, dataset=dataset, sql=question.gold_sql, actor=ACTOR)
    context = services.CallContext(
        trace_id=new_trace_id(), idempotency_key=f"datachat-eval:{uuid.uuid4().hex}"
    )
    try:
        answer = services.ask(
            tenant=tenant,
            dataset=dataset,
            question=question.question,
            context=context,
            actor=ACTOR,
            model=model,
        )
    except AutomateError as exc:
        return Outcome(question, correct=False, error=exc.code)
    assert answer.result is not None  # ask raises when there is no result
    ordered = has_order_by(question.gold_sql)
    return Outcome(question, same_rows(gold, answer.result, ordered=ordered), answer.sql)


def has_order_by(sql: str) -> bool:
    """Whether the outermost query of ``sql`` orders its rows."""
    try:
        tree = sqlglot.parse_one(sql, read="postgres")
    except SqlglotError:
        return False
    return tree.args.get("order") is not None


def same_rows(gold: QueryResult, predicted: QueryResult, *, ordered: bool) -> bool:
    expected = [_row(row) for row in gold.rows]
    got = [_row(row) for row in predicted.rows]
    return expected == got if ordered else Counter(expected) == Counter(got)


def _row(row: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(_value(value) for value in row)


def _value(value: Any) -> Any:
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        number = Decimal(str(value))
        return number.normalize() if number.is_finite() else str(number)
    plain = json_value(value)
    if isinstance(plain, list):
        return tuple(_value(item) for item in plain)
    if isinstance(plain, dict):
        return json.dumps(plain, sort_keys=True)
    return plain
