"""NL→SQL: a question about a dataset answered with guarded SQL, its rows and a chart.

:func:`ask` builds the prompt from the dataset (aliases, allowed columns, descriptions, sample
values), the most similar curated examples and the session's recent turns, asks the tenant's
model for structured output ``{sql, explanation, chart}`` through the LLM gateway (metered and
budgeted with the caller's :class:`CallContext`), and runs the SQL through the guard and the
read-only executor (:func:`automate_datachat.services.run_sql`). When the guard or Postgres
refuses the SQL, the model gets the error and one more try. The chart proposal becomes a
validated Vega-Lite spec (:mod:`automate_datachat.charts`); a chart that does not fit the result
is dropped, never the answer. With a session, the turn is stored and follow-ups read it.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Generator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from automate_core.errors import AutomateError
from automate_datachat import charts, examples, sessions
from automate_datachat.conf import datachat_settings
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.errors import SQLExecutionFailed, SQLRejected
from automate_datachat.results import QueryResult
from automate_llm import services as llm
from automate_llm.services import CallContext, CallUsage

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant
    from automate_datachat.models import DataChatMessage, DataChatSession

#: The structured answer the model must give.
ANSWER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "sql": {"type": "string", "description": "One PostgreSQL SELECT query."},
        "explanation": {"type": "string", "description": "One or two sentences for the user."},
        "chart": charts.PROPOSAL_SCHEMA,
    },
    "required": ["sql", "explanation", "chart"],
    "additionalProperties": False,
}

SYSTEM_PROMPT = """You answer questions about a dataset by writing one PostgreSQL SELECT query.
Rules: use only the tables and columns listed below, by the names given; the data is already
restricted to the user's organisation, so never filter by tenant; no schema names, no system
catalogs, no writes, no functions with side effects; one statement, no semicolon. Prefer
readable column aliases. Propose a chart (mark bar, line, area, point or arc; x and y naming
columns of your result, with Vega-Lite types) when one helps, else null. Answer with JSON only:
{"sql": "...", "explanation": "...", "chart": {...} or null}."""

REPAIR_PROMPT = """The database refused that SQL: {error}
Write a corrected query that follows the rules. Answer with the same JSON shape."""


@dataclass
class Answer:
    """What :func:`ask` found. ``result`` and ``chart`` are None when the SQL failed twice
    (then ``error`` holds the NormalizedError body and the error was raised after storing)."""

    question: str
    sql: str
    explanation: str
    result: QueryResult | None
    chart: dict[str, Any] | None
    usage: CallUsage
    repaired: bool = False
    request_ids: list[str] = field(default_factory=list)
    session: DataChatSession | None = None
    message: DataChatMessage | None = None
    error: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        result = self.result.to_json() if self.result is not None else None
        return {
            "session": str(self.session.pk) if self.session is not None else None,
            "message": str(self.message.pk) if self.message is not None else None,
            "question": self.question,
            "explanation": self.explanation,
            "sql": self.sql,
            "result": result,
            "chart": self.chart,
            "repaired": self.repaired,
            "usage": usage_json(self.usage, self.request_ids),
        }


#: What :func:`answer_events` reports as it goes: ``("sql", text)`` before each run (again,
#: with the repaired text, after a refusal) and ``("rows", QueryResult)`` once the SQL ran.
Event = tuple[str, Any]


def ask(
    *,
    tenant: Tenant,
    dataset: DatasetDefinition,
    question: str,
    session: DataChatSession | None = None,
    context: CallContext,
    actor: Any = None,
    model: str | None = None,
) -> Answer:
    """Answer ``question`` about ``dataset`` (bound to ``tenant``); see the module docstring.

    Raises the gateway's errors (``BudgetExceeded``, ``NoProviderConfigured``...) before any
    SQL runs, and ``SQLRejected`` / ``SQLExecutionFailed`` when the repaired SQL fails too.
    """
    events = answer_events(
        tenant=tenant,
        dataset=dataset,
        question=question,
        session=session,
        context=context,
        actor=actor,
        model=model,
    )
    while True:
        try:
            next(events)
        except StopIteration as done:
            answer: Answer = done.value
            return answer


def answer_events(
    *,
    tenant: Tenant,
    dataset: DatasetDefinition,
    question: str,
    session: DataChatSession | None = None,
    context: CallContext,
    actor: Any = None,
    model: str | None = None,
) -> Generator[Event, None, Answer]:
    """:func:`ask` as it goes: yields :data:`Event` pairs and returns the :class:`Answer`.
    The first model call is made before the first event, so its errors come first."""
    from automate_datachat.services import run_sql

    messages = prompt(tenant=tenant, dataset=dataset, question=question, session=session)
    usage = CallUsage()
    request_ids: list[str] = []

    def propose(call_messages: list[dict[str, Any]], key_suffix: str) -> dict[str, Any]:
        nonlocal usage
        key = context.idempotency_key
        call_context = dataclasses.replace(
            context, idempotency_key=f"{key}{key_suffix}" if key else ""
        )
        response = llm.structured(
            tenant=tenant,
            messages=call_messages,
            schema=ANSWER_SCHEMA,
            model=model or datachat_settings.MODEL,
            context=call_context,
        )
        usage = usage + response.usage
        request_ids.extend(str(pk) for pk in response.request_ids)
        return dict(response.value)

    proposal = propose(messages, "")
    repaired = False
    try:
        try:
            yield "sql", proposal["sql"]
            result = run_sql(tenant=tenant, dataset=dataset, sql=proposal["sql"], actor=actor)
        except (SQLRejected, SQLExecutionFailed) as exc:
            repaired = True
            messages = [
                *messages,
                {"role": "assistant", "content": json.dumps(proposal)},
                {"role": "user", "content": REPAIR_PROMPT.format(error=_error_text(exc))},
            ]
            proposal = propose(messages, ":sql-repair")
            yield "sql", proposal["sql"]
            result = run_sql(tenant=tenant, dataset=dataset, sql=proposal["sql"], actor=actor)
    except AutomateError as exc:
        failed = Answer(
            question=question,
            sql=proposal["sql"],
            explanation=proposal.get("explanation", ""),
            result=None,
            chart=None,
            usage=usage,
            repaired=repaired,
            request_ids=request_ids,
            session=session,
            error={"code": exc.code, "message": exc.message, "details": exc.details},
        )
        _store(failed)
        raise
    yield "rows", result
    answer = Answer(
        question=question,
        sql=result.sql,
        explanation=proposal.get("explanation", ""),
        result=result,
        chart=_chart(proposal.get("chart"), result),
        usage=usage,
        repaired=repaired,
        request_ids=request_ids,
        session=session,
    )
    _store(answer)
    return answer


def prompt(
    *,
    tenant: Tenant,
    dataset: DatasetDefinition,
    question: str,
    session: DataChatSession | None = None,
) -> list[dict[str, Any]]:
    """The messages of the first call: rules and schema, examples, history, the question."""
    system = f"{SYSTEM_PROMPT}\n\n{schema_text(dataset)}"
    found = examples.similar_examples(
        tenant=tenant,
        dataset=dataset.slug,
        question=question,
        limit=int(datachat_settings.PROMPT_EXAMPLES),
    )
    if found:
        pairs = "\n\n".join(f"Question: {e.question}\nSQL: {e.sql}" for e in found)
        system += f"\n\nExamples of good answers:\n\n{pairs}"
    messages: list[dict[str, Any]] = [{"role": "system", "content": system}]
    if session is not None:
        turns = int(datachat_settings.HISTORY_TURNS)
        for message in sessions.history(session, turns=turns):
            if message.role == "user":
                messages.append({"role": "user", "content": message.content})
            else:
                said = {"sql": message.sql, "explanation": message.content}
                messages.append({"role": "assistant", "content": json.dumps(said)})
    messages.append({"role": "user", "content": question})
    return messages


def schema_text(dataset: DatasetDefinition) -> str:
    """The dataset as the model reads it: each alias with its description and columns (with
    their descriptions and sample values)."""
    lines = [f"Dataset {dataset.slug}: {dataset.description}".rstrip(": ")]
    lines.append(f"At most {dataset.row_cap} rows are returned.")
    for table in dataset.tables:
        lines.append(
            f"\nTable {table.alias}" + (f": {table.description}" if table.description else "")
        )
        for column in table.columns:
            line = f"  - {column.name}"
            if column.description:
                line += f": {column.description}"
            if column.samples:
                line += (
                    f" (e.g. {', '.join(json.dumps(s, default=str) for s in column.samples[:5])})"
                )
            lines.append(line)
    return "\n".join(lines)


def usage_json(usage: CallUsage, request_ids: list[str]) -> dict[str, Any]:
    return {
        "input_tokens": usage.input_tokens,
        "output_tokens": usage.output_tokens,
        "cached_tokens": usage.cached_tokens,
        "cost": str(usage.cost),
        "request_ids": request_ids,
    }


def _chart(raw: Any, result: QueryResult) -> dict[str, Any] | None:
    if not raw or not result.rows:
        return None
    try:
        return charts.build_spec(charts.ChartProposal.model_validate(raw), result)
    except (ValueError, charts.ChartInvalid):
        return None


def _error_text(exc: AutomateError) -> str:
    reason = exc.details.get("reason") or exc.details.get("sqlstate") or exc.code
    return f"{exc.message} ({reason})"


def _store(answer: Answer) -> None:
    if answer.session is None:
        return
    data: dict[str, Any] = {}
    if answer.result is not None:
        cap = int(datachat_settings.MESSAGE_ROWS)
        data = answer.result.to_json()
        data["rows"] = data["rows"][:cap]
        data["rows_stored"] = len(data["rows"])
    _, answer.message = sessions.add_turn(
        answer.session,
        answer.question,
        {
            "content": answer.explanation,
            "sql": answer.sql,
            "data": data,
            "chart": answer.chart,
            "usage": usage_json(answer.usage, answer.request_ids),
            "error": answer.error,
        },
    )
