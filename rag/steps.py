"""Workflow steps of the RAG app, registered when the app is ready.

``rag.query`` searches one of the tenant's endpoints from a JSON-graph workflow::

    {"type": "rag.query", "endpoint": "support",
     "query": "{{ event.payload.question }}", "top_k": 5,
     "filters": {"lang": "{{ event.payload.lang }}"}, "next": "reply"}

Its output is the query result (``results``, ``index_version``, ``timings``, ``trace_id``) plus
``context``: the results as numbered passages, ready for a prompt. The endpoint is looked up in
the execution's tenant only, and its access policy's forced filters apply as in the API. The
step is read-only, so a retry simply queries again.

:data:`RAG_QUERY_TOOL` describes the same operation as a tool an agent can call
(:func:`run_query_tool`); code-first workflows call :func:`rag.services.query` directly.

``rag.answer`` answers a question from the endpoint's passages through the LLM gateway, with
citations (:func:`rag.services.answer`)::

    {"type": "rag.answer", "endpoint": "support",
     "query": "{{ event.payload.question }}", "top_k": 5, "max_tokens": 300, "next": "reply"}

Its output is the answer (``answer``, ``outcome``, ``citations``, ``cited_documents``,
``results``, ``usage`` with ``cost``, ``request_id``, ``model``, ``provider``, ``timings``,
``trace_id``). The call is attributed to the run like every AI step: the step's idempotency key
(stable across retries), the execution, the workflow budget scope and the trace; the run's
``usage`` adds it up. ``model``, ``provider``, ``max_tokens`` and ``temperature`` override the
endpoint's ``retrieval_config["answer"]``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.errors import InvalidInputError
from automate_core.workflows.steps import (
    StepCall,
    StepResult,
    StepType,
    register_step_type,
    render_value,
    step_tenant,
)
from automate_llm.services import CallContext
from rag import services
from rag.conf import rag_settings

Problem = tuple[str, str]


def run_query(
    tenant_id: Any,
    endpoint: str,
    query: str,
    *,
    top_k: int | None = None,
    filters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Query ``endpoint`` of the tenant; a JSON-safe dict (the step's output)."""
    if tenant_id is None:
        raise InvalidInputError("rag.query needs a tenant: the run has none")
    found = services.get_endpoint(tenant_id, endpoint)
    result = services.query(found, str(query), top_k=top_k, filters=filters)
    return {**result.to_json(), "context": services.numbered_passages(result)}


def _rendered_integer(value: Any) -> Any:
    """A templated number renders to text: "5" becomes 5 (anything else is checked later)."""
    if isinstance(value, str) and value.strip().isdigit():
        return int(value)
    return value


def _search_inputs(node: Mapping[str, Any], scope: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "query": render_value(node["query"], scope, "query"),
        "filters": render_value(node.get("filters"), scope, "filters"),
        "top_k": _rendered_integer(render_value(node.get("top_k"), scope, "top_k")),
    }


def _run(node: Mapping[str, Any], call: StepCall) -> StepResult:
    inputs = _search_inputs(node, call.scope())
    output = run_query(
        call.tenant_id,
        node["endpoint"],
        inputs["query"],
        top_k=inputs["top_k"],
        filters=inputs["filters"],
    )
    return StepResult(output=output)


#: Fields of a rag.answer node that choose the model call (they override the endpoint's).
ANSWER_FIELDS = ("model", "provider", "max_tokens", "temperature")


def _run_answer(node: Mapping[str, Any], call: StepCall) -> StepResult:
    tenant = step_tenant(call)
    scope = call.scope()
    inputs = _search_inputs(node, scope)
    options = {name: render_value(node.get(name), scope, name) for name in ANSWER_FIELDS}
    options["max_tokens"] = _rendered_integer(options["max_tokens"])
    if isinstance(options["temperature"], str):
        try:
            options["temperature"] = float(options["temperature"])
        except ValueError:
            raise InvalidInputError(
                "temperature must be a number", details={"field": "temperature"}
            ) from None
    found = services.get_endpoint(tenant, node["endpoint"])
    answer = services.answer(
        found,
        str(inputs["query"]),
        top_k=inputs["top_k"],
        filters=inputs["filters"],
        context=CallContext.for_step(call),
        **options,
    )
    return StepResult(output=answer.to_json())


def _validate(node: Mapping[str, Any], path: str) -> list[Problem]:
    return _validate_search(node, path, allowed=())


def _validate_answer(node: Mapping[str, Any], path: str) -> list[Problem]:
    problems = _validate_search(node, path, allowed=ANSWER_FIELDS)
    for name in ("model", "provider"):
        if node.get(name) is not None and not isinstance(node[name], str):
            problems.append((f"{path}.{name}", "must be a string"))
    max_tokens = node.get("max_tokens")
    positive = isinstance(max_tokens, int) and not isinstance(max_tokens, bool) and max_tokens > 0
    if max_tokens is not None and not _templated(max_tokens) and not positive:
        problems.append((f"{path}.max_tokens", "must be a positive integer"))
    temperature = node.get("temperature")
    if temperature is not None and not _templated(temperature):
        number = isinstance(temperature, int | float) and not isinstance(temperature, bool)
        if not number or not 0 <= temperature <= 2:
            problems.append((f"{path}.temperature", "must be a number from 0 to 2"))
    return problems


def _templated(value: Any) -> bool:
    return isinstance(value, str) and "{{" in value


def _validate_search(
    node: Mapping[str, Any], path: str, *, allowed: tuple[str, ...]
) -> list[Problem]:
    problems: list[Problem] = []
    for field in ("endpoint", "query"):
        if not isinstance(node.get(field), str) or not node.get(field):
            problems.append((f"{path}.{field}", "is required (a string)"))
    top_k = node.get("top_k")
    max_top_k = int(rag_settings.MAX_TOP_K)
    templated = _templated(top_k)
    valid = isinstance(top_k, int) and not isinstance(top_k, bool) and 1 <= top_k <= max_top_k
    if top_k is not None and not templated and not valid:
        problems.append((f"{path}.top_k", f"must be an integer from 1 to {max_top_k}"))
    filters = node.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        problems.append((f"{path}.filters", "must be an object of metadata filters"))
    known = {"type", "endpoint", "query", "top_k", "filters", "next", "retry", *allowed}
    unknown = set(node) - known
    problems.extend((f"{path}.{key}", "unknown field") for key in sorted(unknown))
    return problems


#: The query as a tool for agents (JSON Schema of its arguments, OpenAI/Anthropic style).
RAG_QUERY_TOOL: dict[str, Any] = {
    "name": "rag_query",
    "description": (
        "Search a knowledge base and return the most relevant passages with their sources. "
        "Use it to answer questions from the organisation's documents."
    ),
    "parameters": {
        "type": "object",
        "properties": {
            "endpoint": {"type": "string", "description": "Slug of the knowledge base."},
            "query": {"type": "string", "description": "What to search for."},
            "top_k": {"type": "integer", "minimum": 1, "maximum": 20, "default": 5},
            "filters": {"type": "object", "description": "Metadata filters, e.g. {lang: en}."},
        },
        "required": ["endpoint", "query"],
        "additionalProperties": False,
    },
}


def run_query_tool(tenant_id: Any, arguments: Mapping[str, Any]) -> dict[str, Any]:
    """Run :data:`RAG_QUERY_TOOL` with an agent's arguments (validated like a step node)."""
    node = {"type": "rag.query", **arguments}
    problems = _validate(node, "arguments")
    if problems:
        raise InvalidInputError(
            "; ".join(f"{p}: {m}" for p, m in problems), details={"problems": problems}
        )
    return run_query(
        tenant_id,
        arguments["endpoint"],
        arguments["query"],
        top_k=arguments.get("top_k"),
        filters=arguments.get("filters"),
    )


register_step_type("rag.query", StepType(_run, _validate))
register_step_type("rag.answer", StepType(_run_answer, _validate_answer))
