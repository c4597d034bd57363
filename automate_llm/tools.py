"""Tools an ``llm.agent`` step may let the model call, as a registry of tool types.

A tool in a graph names its type and what the model sees (name, description, JSON-schema
parameters)::

    {"type": "connector", "name": "lookup_order", "description": "Find an order by id",
     "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
     "connection": "shop", "action": "request",
     "input": {"method": "GET", "url": "/orders/{{ arguments.order_id }}"}}

Built-in types: ``connector`` (any connector action; its params are the tool's ``input``
rendered with the model's ``arguments`` in scope, or the arguments themselves) and ``workflow``
(starts another workflow with the arguments as its start kwargs, in the same transaction as the
agent's checkpoint). Other apps register theirs (``mcp``: a tool of an MCP server) with
``automate_llm.services.register_tool_type``; a type whose model-facing description lives
elsewhere than the node (an MCP tool's approved definition) gives a ``spec`` hook.

A tool runs as its own checkpointed visit of the agent step, with that visit's idempotency key:
a completed tool call is never repeated after a crash, and a retried one reuses its key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from automate_core.workflows.compiled import StepCall
from automate_core.workflows.graph import Node, Problem, run_connector, validate_connector
from automate_core.workflows.templating import render_value
from automate_llm.types import ToolSpec

ToolRun = Callable[[Node, dict[str, Any], StepCall], Any]


@dataclass(frozen=True)
class ToolType:
    """How a tool of one type runs (returns a JSON value for the model) and is checked."""

    run: ToolRun
    validate: Callable[[Node, str], list[Problem]] = lambda tool, path: []
    #: What the model is told about a tool of this type in a running step, when that is not
    #: (only) the node's ``name`` / ``description`` / ``parameters``.
    spec: Callable[[Node, StepCall], ToolSpec] | None = None


_types: dict[str, ToolType] = {}


def register_tool_type(name: str, tool_type: ToolType) -> None:
    """Make ``{"type": name, ...}`` tools usable by ``llm.agent`` (a later call replaces it)."""
    _types[name] = tool_type


def tool_spec(tool: Node, call: StepCall | None = None) -> ToolSpec:
    """What the model is told about ``tool``: its type's ``spec`` inside a running step
    (``call``), else the node's own fields."""
    kind = _types.get(tool.get("type", "connector"))
    if call is not None and kind is not None and kind.spec is not None:
        return kind.spec(tool, call)
    return ToolSpec(
        name=tool["name"],
        description=tool.get("description") or "",
        parameters=tool.get("parameters") or {"type": "object", "properties": {}},
    )


def validate_tools(tools: Any, path: str) -> list[Problem]:
    if not isinstance(tools, list):
        return [(path, "must be a list of tools")]
    problems: list[Problem] = []
    names: set[str] = set()
    for i, tool in enumerate(tools):
        where = f"{path}[{i}]"
        if not isinstance(tool, Mapping):
            problems.append((where, "must be an object"))
            continue
        kind = tool.get("type", "connector")
        if kind not in _types:
            problems.append((f"{where}.type", f"unknown tool type; one of {', '.join(_types)}"))
            continue
        try:
            tool_spec(tool)
        except ValueError as exc:
            problems.append((where, f"invalid tool: {exc}".splitlines()[0]))
            continue
        if tool["name"] in names:
            problems.append((f"{where}.name", f"{tool['name']!r} is used twice"))
        names.add(tool["name"])
        problems.extend(_types[kind].validate(tool, where))
    return problems


def run_tool(tool: Node, arguments: dict[str, Any], call: StepCall) -> Any:
    return _types[tool.get("type", "connector")].run(tool, arguments, call)


# -- built-in tool types -------------------------------------------------------------------------


def _connector_tool(tool: Node, arguments: dict[str, Any], call: StepCall) -> Any:
    if "input" in tool:
        scope = {**call.scope(), "arguments": arguments}
        params = render_value(tool["input"], scope, "input")
    else:
        params = arguments
    result = run_connector(tool, params, call)
    return {"status": result.status, "data": result.data}


def _workflow_tool(tool: Node, arguments: dict[str, Any], call: StepCall) -> Any:
    from automate_core.tenancy.models import Tenant
    from automate_core.workflows import engine

    tenant = Tenant.objects.get(pk=call.tenant_id)
    run = engine.start(tool["workflow"], tenant=tenant, trace_id=call.trace_id, **arguments)
    return {"execution_id": str(run.pk), "status": run.status, "result": run.result}


def _validate_workflow_tool(tool: Node, path: str) -> list[Problem]:
    if not isinstance(tool.get("workflow"), str) or not tool["workflow"]:
        return [(f"{path}.workflow", "must name the workflow to start")]
    return []


register_tool_type("connector", ToolType(_connector_tool, validate_connector))
register_tool_type("workflow", ToolType(_workflow_tool, _validate_workflow_tool))
