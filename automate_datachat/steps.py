"""Workflow steps of data chat, registered when the app is ready.

``sql.query`` runs SQL on one of the tenant's datasets through the guard and the read-only
executor::

    {"type": "sql.query", "dataset": "shop",
     "sql": "SELECT count(*) AS orders FROM orders WHERE status = :status",
     "params": {"status": "{{ event.payload.status }}"}, "next": "notify"}

The SQL is never templated: ``params`` are rendered (Jinja2, sandboxed) and sent as bind
parameters for the ``:name`` placeholders, so a value can never change the query. Its output is
the result (``columns``, ``rows``, ``row_count``, ``truncated``, ``sql``, ``duration_ms``).

``datachat.ask`` answers a question in plain language (:func:`automate_datachat.services.ask`)::

    {"type": "datachat.ask", "dataset": "shop",
     "question": "{{ event.payload.question }}", "next": "reply"}

Its output is the answer (``explanation``, ``sql``, ``result``, ``chart``, ``usage`` with
``cost``). The model calls are attributed to the run like every AI step (the step's
idempotency key, the execution, the workflow budget scope, the trace). Both steps only read, so
a retry runs again. Code-first workflows call :func:`query` and :func:`ask` inside a ``@step``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.workflows.steps import (
    Node,
    Problem,
    StepCall,
    StepResult,
    StepType,
    current_step_call,
    register_step_type,
    render_value,
    step_tenant,
)
from automate_datachat import services
from automate_datachat.asking import Answer
from automate_datachat.results import QueryResult
from automate_llm.services import CallContext

_COMMON = frozenset({"type", "dataset", "next", "retry"})


def _run_query(node: Node, call: StepCall) -> StepResult:
    params = render_value(node.get("params") or {}, call.scope(), "params")
    result = services.run_sql(
        tenant=step_tenant(call),
        dataset=node["dataset"],
        sql=node["sql"],
        params=params,
        actor=f"execution:{call.execution_id}",
    )
    return StepResult(output=result.to_json())


def _run_ask(node: Node, call: StepCall) -> StepResult:
    scope = call.scope()
    answer = services.ask(
        tenant=step_tenant(call),
        dataset=node["dataset"],
        question=str(render_value(node["question"], scope, "question")),
        context=CallContext.for_step(call),
        actor=f"execution:{call.execution_id}",
        model=render_value(node.get("model"), scope, "model"),
    )
    return StepResult(output=_answer_output(answer))


def _answer_output(answer: Answer) -> dict[str, Any]:
    output = answer.to_json()
    for name in ("session", "message"):
        output.pop(name)
    return output


def _validate_query(node: Node, path: str) -> list[Problem]:
    problems = _required(node, path, ("dataset", "sql"))
    params = node.get("params")
    if params is not None and not isinstance(params, Mapping):
        problems.append((f"{path}.params", "must be an object of parameter values"))
    if isinstance(node.get("sql"), str) and "{{" in node["sql"]:
        problems.append((f"{path}.sql", "is never templated: use :name placeholders and params"))
    return problems + _unknown(node, path, {"sql", "params"})


def _validate_ask(node: Node, path: str) -> list[Problem]:
    problems = _required(node, path, ("dataset", "question"))
    if node.get("model") is not None and not isinstance(node["model"], str):
        problems.append((f"{path}.model", "must be a string"))
    return problems + _unknown(node, path, {"question", "model"})


def _required(node: Node, path: str, names: tuple[str, ...]) -> list[Problem]:
    return [
        (f"{path}.{name}", "is required (a string)")
        for name in names
        if not isinstance(node.get(name), str) or not node.get(name)
    ]


def _unknown(node: Node, path: str, allowed: set[str]) -> list[Problem]:
    return [(f"{path}.{key}", "unknown field") for key in sorted(set(node) - _COMMON - allowed)]


# -- code-first ----------------------------------------------------------------------------------


def query(dataset: str, sql: str, params: Mapping[str, Any] | None = None) -> QueryResult:
    """``services.run_sql`` from inside a code-first ``@step``, on the run's tenant; ``params``
    are bound to the ``:name`` placeholders of ``sql``."""
    call = current_step_call()
    return services.run_sql(
        tenant=step_tenant(call),
        dataset=dataset,
        sql=sql,
        params=params,
        actor=f"execution:{call.execution_id}",
    )


def ask(dataset: str, question: str, *, model: str | None = None) -> Answer:
    """``services.ask`` from inside a code-first ``@step``, attributed to the running step."""
    call = current_step_call()
    return services.ask(
        tenant=step_tenant(call),
        dataset=dataset,
        question=question,
        context=CallContext.for_step(call),
        actor=f"execution:{call.execution_id}",
        model=model,
    )


register_step_type("sql.query", StepType(_run_query, _validate_query))
register_step_type("datachat.ask", StepType(_run_ask, _validate_ask))
