"""MCP tools in ``llm.agent``: the agent tool type ``mcp``, registered when the app is ready.

.. code-block:: json

    {"type": "llm.agent", "user": "{{ event.payload.question }}",
     "tools": [{"type": "mcp", "name": "search_docs", "tool": "docs/search"}], "next": "reply"}

``tool`` is ``server/tool`` (the server's slug). The model is told the tool's *approved*
definition (its description and input schema; the node's own ``description`` or
``parameters`` win when given), never what the server says now. A call goes through
:func:`mcp_bridge.services.call_tool` (policy, approved schema, live pin check, rate limit,
audit) with the visit's idempotency key and the pin the workflow version was published with
(:mod:`mcp_bridge.workflow_pins`). The agent runs each tool call as its own checkpointed visit,
so a completed call is never repeated. A refusal is told to the model as the tool's error.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.workflows.steps import Node, Problem, StepCall, attribution, step_tenant
from automate_llm.services import ToolSpec, ToolType, register_tool_type
from mcp_bridge import services
from mcp_bridge.workflow_pins import AGENT_TOOL_TYPE, published_pin, split_reference


def _run(node: Node, arguments: dict[str, Any], call: StepCall) -> Any:
    server, name = split_reference(node["tool"])
    who = attribution(call)
    result = services.call(
        step_tenant(call),
        server,
        name,
        arguments,
        idempotency_key=who.idempotency_key,
        actor=f"execution:{who.execution_id}" if who.execution_id else "system",
        pin=published_pin(call.execution_id, server, name),
    )
    return {"text": result.text, "structured": result.structured}


def _spec(node: Node, call: StepCall) -> ToolSpec:
    server, name = split_reference(node["tool"])
    tool = services.get_tool(step_tenant(call), server, name)
    approved = tool.approved_version.definition if tool.approved_version is not None else {}
    return ToolSpec(
        name=node["name"],
        description=node.get("description") or approved.get("description") or "",
        parameters=node.get("parameters")
        or approved.get("inputSchema")
        or {"type": "object", "properties": {}},
    )


def _validate(node: Node, path: str) -> list[Problem]:
    reference = node.get("tool")
    server, name = split_reference(reference) if isinstance(reference, str) else ("", "")
    if not server or not name:
        return [(f"{path}.tool", 'must name an MCP tool as "server/tool"')]
    if node.get("parameters") is not None and not isinstance(node["parameters"], Mapping):
        return [(f"{path}.parameters", "must be an object")]
    return []


register_tool_type(AGENT_TOOL_TYPE, ToolType(_run, _validate, spec=_spec))
