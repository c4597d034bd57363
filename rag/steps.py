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
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.errors import InvalidInputError
from automate_core.workflows.compiled import StepCall, StepResult
from automate_core.workflows.graph import StepType, register_step_type
from automate_core.workflows.templating import render_value
from rag import services
from rag.conf import rag_settings
from rag.search import QueryResult

Problem = tuple[str, str]


def passages(result: QueryResult) -> str:
    """The results as numbered passages ("[1] title\\ntext"), the form prompts cite."""
    blocks = []
    for number, item in enumerate(result.results, start=1):
        heading = item.title or item.document.get("title") or item.document.get("external_id")
        blocks.append(f"[{number}] {heading}\n{item.text}")
    return "\n\n".join(blocks)


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
    return {**result.to_json(), "context": passages(result)}


def _run(node: Mapping[str, Any], call: StepCall) -> StepResult:
    scope = call.scope()
    query = render_value(node["query"], scope, "query")
    filters = render_value(node.get("filters"), scope, "filters")
    top_k = render_value(node.get("top_k"), scope, "top_k")
    if isinstance(top_k, str) and top_k.isdigit():
        top_k = int(top_k)
    output = run_query(call.tenant_id, node["endpoint"], query, top_k=top_k, filters=filters)
    return StepResult(output=output)


def _validate(node: Mapping[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    for field in ("endpoint", "query"):
        if not isinstance(node.get(field), str) or not node.get(field):
            problems.append((f"{path}.{field}", "is required (a string)"))
    top_k = node.get("top_k")
    max_top_k = int(rag_settings.MAX_TOP_K)
    templated = isinstance(top_k, str) and "{{" in top_k
    valid = isinstance(top_k, int) and not isinstance(top_k, bool) and 1 <= top_k <= max_top_k
    if top_k is not None and not templated and not valid:
        problems.append((f"{path}.top_k", f"must be an integer from 1 to {max_top_k}"))
    filters = node.get("filters")
    if filters is not None and not isinstance(filters, Mapping):
        problems.append((f"{path}.filters", "must be an object of metadata filters"))
    unknown = set(node) - {"type", "endpoint", "query", "top_k", "filters", "next", "retry"}
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
