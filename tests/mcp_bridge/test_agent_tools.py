"""MCP tools in ``llm.agent`` (``{"type": "mcp", "tool": "server/tool"}``), pinned when the
workflow version is published."""

from __future__ import annotations

import pytest

from automate_core.errors import InvalidInputError
from automate_core.executions.models import Execution, StepRun
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_llm.models import LLMModelConfig
from automate_llm.testing import OpenAIWire, Reply, ToolUse
from automate_llm.testing.providers import MODELS
from mcp_bridge import services
from mcp_bridge.models import MCPTool, MCPWorkflowPin

from .conftest import add

pytestmark = pytest.mark.django_db(transaction=True)

MCP_ADD = {"type": "mcp", "name": "add", "tool": "tools/add"}


@pytest.fixture
def wire(make_wire_provider, openai_wire) -> OpenAIWire:
    """An OpenAI-speaking server as the tenant's default model."""
    provider = make_wire_provider(openai_wire, is_default=True)
    LLMModelConfig.objects.create(
        tenant=provider.tenant,
        provider=provider,
        name="Wire",
        slug="wire",
        model_id=MODELS[openai_wire.provider_type],
        is_default=True,
    )
    return openai_wire


def _graph(tools: list[dict]) -> dict:
    agent = {"type": "llm.agent", "user": "{{ context.q }}", "tools": tools, "next": "done"}
    done = {"type": "complete", "result": {"answer": "{{ steps.agent.output.text }}"}}
    return {"start": "agent", "steps": {"agent": agent, "done": done}}


def _publish(tenant, tools: list[dict]) -> None:
    automation = Automation.objects.create(tenant=tenant, name="Agent", slug="agent-flow")
    automation.new_version(_graph(tools)).publish()


def _start(tenant) -> Execution:
    run = engine.start("agent-flow", tenant=tenant, q="What is 2 + 3?")
    run_until_idle()
    run.refresh_from_db()
    return run


def test_agent_calls_an_approved_mcp_tool_as_its_own_visit(approved_row, tool_server, wire):
    _publish(approved_row.tenant, [MCP_ADD])
    wire.script(Reply(tool_calls=(ToolUse("add", {"a": 2, "b": 3}),)), Reply(text="It is 5."))

    run = _start(approved_row.tenant)

    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["answer"] == "It is 5."
    [received] = tool_server.calls
    assert received.arguments == {"a": 2, "b": 3}
    visits = list(StepRun.objects.filter(execution=run, step_id="agent").order_by("seq"))
    assert [v.status for v in visits] == ["completed"] * 3  # model, tool, model
    assert received.meta[services.IDEMPOTENCY_META_KEY] == visits[1].idempotency_key
    assert visits[1].output["agent"]["tool_calls"][0]["result"]["structured"] == {"result": 5}


def test_the_model_is_told_the_approved_definition(approved_row, tool_server, wire):
    _publish(approved_row.tenant, [MCP_ADD])
    wire.script(Reply(text="Fine."))

    _start(approved_row.tenant)

    [offered] = wire.requests[0].body["tools"]
    assert offered["function"]["description"] == "Add two integers."
    assert offered["function"]["parameters"]["required"] == ["a", "b"]


def test_publishing_records_the_approved_pin_of_each_mcp_tool(approved_row):
    _publish(approved_row.tenant, [MCP_ADD])

    [pin] = MCPWorkflowPin.objects.all()
    tool = MCPTool.objects.get(name="add")
    assert (pin.server, pin.tool_name, pin.pin) == ("tools", "add", tool.approved_pin)


def test_publishing_a_graph_with_an_unapproved_mcp_tool_is_refused(server_row):
    server_row.sync_tools()  # tools arrive pending

    with pytest.raises(InvalidInputError, match=r"tools/add \(pending\)"):
        _publish(server_row.tenant, [MCP_ADD])

    assert (
        not Automation.objects.get(slug="agent-flow")
        .versions.filter(published_at__isnull=False)
        .exists()
    )


def test_a_run_refuses_a_tool_approved_anew_since_publish(approved_row, tool_server, wire):
    _publish(approved_row.tenant, [MCP_ADD])
    tool_server.replace(add, description="Add two integers, exactly.")
    approved_row.sync_tools()
    services.approve_tool(MCPTool.objects.get(name="add"), actor="user:1")
    wire.script(Reply(tool_calls=(ToolUse("add", {"a": 2, "b": 3}),)), Reply(text="Cannot."))

    run = _start(approved_row.tenant)

    assert run.status == Execution.Status.COMPLETED, run.error
    assert tool_server.calls == []
    assert "publish a new version" in str(wire.requests[1].body)


def test_graph_validation_names_a_bad_mcp_tool_reference():
    problems = dict(validate(_graph([{"type": "mcp", "name": "x", "tool": "no-slash"}])))

    assert "server/tool" in problems["steps.agent.tools[0].tool"]
