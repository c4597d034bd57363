"""Workflow steps of the MCP bridge, registered when the app is ready.

``mcp.call`` calls one approved tool of one of the tenant's servers from a JSON-graph
workflow; ``arguments`` are rendered (sandboxed Jinja2) against the run's scope first::

    {"type": "mcp.call", "server": "github", "tool": "create_issue",
     "arguments": {"title": "{{ event.payload.title }}", "labels": ["triage"]}, "next": "notify"}

Its output is the normalized :class:`~mcp_bridge.results.ToolResult` (``text``, ``content``,
``structured``, ``is_error``, ``pin``). The step's idempotency key (``execution:step``, stable
across retries) goes to the server in ``_meta``, and a completed step is checkpointed by the
engine, so a crash after the call never repeats it. A tool that is not approved, whose
definition changed, whose approved pin is not the one the workflow version was published with
(:mod:`mcp_bridge.workflow_pins`), or that answers ``isError`` fails the step with the reason.

Code-first workflows call :func:`call` inside a ``@step``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.workflows.steps import (
    Problem,
    StepCall,
    StepResult,
    StepType,
    attribution,
    current_step_call,
    register_step_type,
    render_value,
    step_tenant,
)
from mcp_bridge import services
from mcp_bridge.results import ToolResult
from mcp_bridge.workflow_pins import published_pin

FIELDS = {"type", "server", "tool", "arguments", "next", "retry"}


def _invoke(
    call: StepCall, server: str, tool: str, arguments: Mapping[str, Any], key_suffix: str = ""
) -> ToolResult:
    tenant = step_tenant(call)
    who = attribution(call, key_suffix=key_suffix)
    return services.call(
        tenant,
        server,
        tool,
        arguments,
        idempotency_key=who.idempotency_key,
        actor=f"execution:{who.execution_id}" if who.execution_id else "system",
        pin=published_pin(call.execution_id, server, tool),
    )


def call(
    server: str, tool: str, arguments: Mapping[str, Any] | None = None, *, key_suffix: str = ""
) -> ToolResult:
    """Call ``tool`` of the run's tenant's ``server`` from a code-first ``@step``, attributed
    to the running step (its idempotency key, plus ``key_suffix`` for a step that makes more
    than one call)."""
    return _invoke(current_step_call(), server, tool, arguments or {}, key_suffix)


def _run(node: Mapping[str, Any], call: StepCall) -> StepResult:
    arguments = render_value(node.get("arguments") or {}, call.scope(), "arguments")
    result = _invoke(call, node["server"], node["tool"], arguments)
    return StepResult(output=result.model_dump(mode="json"))


def _validate(node: Mapping[str, Any], path: str) -> list[Problem]:
    problems: list[Problem] = []
    for name in ("server", "tool"):
        if not isinstance(node.get(name), str) or not node.get(name):
            problems.append((f"{path}.{name}", "is required (a string)"))
    if node.get("arguments") is not None and not isinstance(node["arguments"], Mapping):
        problems.append((f"{path}.arguments", "must be an object"))
    problems.extend((f"{path}.{key}", "unknown field") for key in sorted(set(node) - FIELDS))
    return problems


register_step_type("mcp.call", StepType(_run, _validate))
