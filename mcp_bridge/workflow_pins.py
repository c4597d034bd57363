"""Pins of the MCP tools a published workflow version uses, recorded when it is published.

A graph names tools by server slug and tool name (``mcp.call`` steps, and ``{"type": "mcp"}``
tools of ``llm.agent`` steps). Publishing a version records, for each, the approved pin the
version was built with (:class:`~mcp_bridge.models.MCPWorkflowPin`), in the publish's
transaction: a tool that is not approved then refuses the publish. A run of the version later
refuses a tool whose approved pin is no longer the recorded one (a person approved a new
definition since): the workflow's author reviews the change by publishing a new version.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from automate_core.errors import InvalidInputError
from automate_core.executions.models import Execution
from automate_core.workflows.models import WorkflowVersion
from mcp_bridge.models import MCPTool, MCPWorkflowPin

#: The agent tool type of an MCP tool (``"tool": "server/tool"``).
AGENT_TOOL_TYPE = "mcp"


def split_reference(reference: str) -> tuple[str, str]:
    """``"server/tool"`` -> ``("server", "tool")`` (a tool name may itself hold slashes)."""
    server, _, tool = reference.partition("/")
    return server, tool


def tool_references(graph: Any) -> Iterator[tuple[str, str]]:
    """Each (server, tool) a graph calls, in step order (repeats included)."""
    steps = graph.get("steps") if isinstance(graph, Mapping) else None
    for node in (steps or {}).values():
        if not isinstance(node, Mapping):
            continue
        if node.get("type") == "mcp.call":
            yield str(node.get("server")), str(node.get("tool"))
        tools = node.get("tools")
        for tool in tools if isinstance(tools, list) else []:
            if isinstance(tool, Mapping) and tool.get("type") == AGENT_TOOL_TYPE:
                yield split_reference(str(tool.get("tool")))


def record_pins(version: WorkflowVersion) -> list[MCPWorkflowPin]:
    """Record the approved pin of every MCP tool ``version`` calls; InvalidInputError (the
    publish is refused) for a tool that is missing or not approved."""
    tenant = version.automation.tenant
    pins: dict[tuple[str, str], MCPWorkflowPin] = {}
    problems: list[dict[str, str]] = []
    for server, name in tool_references(version.graph):
        if (server, name) in pins:
            continue
        tool = (
            MCPTool.objects.for_tenant(tenant)
            .filter(server__slug=server, name=name)
            .select_related("approved_version")
            .first()
        )
        if tool is None or tool.status != MCPTool.Status.APPROVED or tool.approved_version is None:
            state = "not found" if tool is None else tool.status
            problems.append({"tool": f"{server}/{name}", "status": state})
            continue
        pins[(server, name)] = MCPWorkflowPin(
            tenant_id=tenant.pk,
            workflow_version=version,
            server=server,
            tool_name=name,
            tool_version=tool.approved_version,
            pin=tool.approved_version.pin,
        )
    if problems:
        raise InvalidInputError(
            f"{version} calls MCP tools that are not approved: "
            + ", ".join(f"{p['tool']} ({p['status']})" for p in problems),
            details={"mcp_tools": problems},
        )
    return MCPWorkflowPin.objects.bulk_create(pins.values(), ignore_conflicts=True)


def on_version_saved(sender: Any, instance: WorkflowVersion, **kwargs: Any) -> None:
    """``post_save`` of a WorkflowVersion: the save that publishes it records its pins."""
    update_fields = kwargs.get("update_fields") or ()
    if instance.published_at is not None and "published_at" in update_fields:
        record_pins(instance)


def published_pin(execution_id: Any, server: str, tool: str) -> str | None:
    """The pin the run's workflow version was published with for ``server/tool`` (None for a
    code-first run or a tool the version did not record)."""
    if not execution_id:
        return None
    version = Execution.objects.filter(pk=execution_id).values("workflow_version_id")
    return (
        MCPWorkflowPin.objects.filter(
            workflow_version_id__in=version, server=server, tool_name=tool
        )
        .values_list("pin", flat=True)
        .first()
    )
