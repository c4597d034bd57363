"""``llm.agent``: the tool-calling loop, each model turn and tool call a checkpointed visit."""

from __future__ import annotations

from collections.abc import Iterator
from decimal import Decimal

import pytest

from automate_core.executions.models import Execution, StepRun
from automate_core.testing.loopback import RecordingServer
from automate_core.testing.loopback import Reply as HttpReply
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_llm.testing import Reply, ToolUse

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop() -> Iterator[RecordingServer]:
    """The business API the agent's tool calls."""
    with RecordingServer() as running:
        yield running


def _lookup_tool(shop: RecordingServer) -> dict:
    return {
        "type": "connector",
        "name": "lookup_order",
        "description": "Find an order by its id",
        "parameters": {
            "type": "object",
            "properties": {"order_id": {"type": "string"}},
            "required": ["order_id"],
        },
        "connector": "http",
        "action": "request",
        "config": {"base_url": f"http://127.0.0.1:{shop.port}"},
        "input": {"method": "POST", "url": "/orders/lookup", "json": "{{ arguments }}"},
    }


def _agent_graph(tools: list[dict], **node) -> dict:
    return {
        "start": "agent",
        "steps": {
            "agent": {
                "type": "llm.agent",
                "system": "You help with orders.",
                "user": "{{ context.question }}",
                "tools": tools,
                "next": "done",
                **node,
            },
            "done": {"type": "complete", "result": {"answer": "{{ steps.agent.output.text }}"}},
        },
    }


def _run(tenant, graph, **kwargs) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="Agent", slug="agent-flow")
    automation.new_version(graph).publish()
    run = engine.start("agent-flow", tenant=tenant, **kwargs)
    run_until_idle()
    run.refresh_from_db()
    return run


def test_agent_calls_a_tool_and_answers_with_its_result(tenant, wire, wire_model, shop):
    shop.script(HttpReply.json({"order": "A-1", "status": "shipped"}))
    wire.script(
        Reply(tool_calls=(ToolUse("lookup_order", {"order_id": "A-1"}),), input_tokens=100),
        Reply(text="Your order A-1 has shipped.", input_tokens=150, output_tokens=9),
    )

    run = _run(tenant, _agent_graph([_lookup_tool(shop)]), question="Where is A-1?")

    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["answer"] == "Your order A-1 has shipped."
    [call] = shop.received
    assert call.json() == {"order_id": "A-1"}
    visits = list(StepRun.objects.filter(execution=run, step_id="agent").order_by("seq"))
    assert [v.status for v in visits] == ["completed"] * 3  # model, tool, model
    assert call.headers["idempotency-key"] == visits[1].idempotency_key
    second_ask = str(wire.requests[1].body)
    assert "shipped" in second_ask  # the tool result went back to the model
    output = visits[-1].output
    assert output["iterations"] == 2
    shown = output["tool_calls"][0]["result"]["data"]["body"]
    assert shown == {"order": "A-1", "status": "shipped"}
    assert output["usage"]["input_tokens"] == 250
    assert run.usage["calls"] == 2
    assert Decimal(run.usage["cost"]) == Decimal(output["usage"]["cost"])


def test_agent_without_tool_calls_answers_in_one_visit(tenant, wire, wire_model, shop):
    wire.script(Reply(text="No tools needed."))

    run = _run(tenant, _agent_graph([_lookup_tool(shop)]), question="Hi")

    assert run.result["answer"] == "No tools needed."
    assert StepRun.objects.filter(execution=run, step_id="agent").count() == 1
    assert shop.received == []


def test_agent_stops_after_max_iterations(tenant, wire, wire_model, shop):
    looping = Reply(tool_calls=(ToolUse("lookup_order", {"order_id": "A-1"}),))
    wire.script(looping, looping, looping)

    run = _run(tenant, _agent_graph([_lookup_tool(shop)], max_iterations=2), question="?")

    assert run.status == Execution.Status.FAILED
    assert "max_iterations" in run.error
    assert len(wire.requests) == 2
    assert len(shop.received) == 2


def test_agent_stops_when_its_cost_cap_is_spent(tenant, wire, wire_model, shop):
    expensive = Reply(
        tool_calls=(ToolUse("lookup_order", {"order_id": "A-1"}),),
        input_tokens=2_000_000,
        output_tokens=10,
    )
    wire.script(expensive, expensive)

    run = _run(tenant, _agent_graph([_lookup_tool(shop)], max_cost="0.01"), question="?")

    assert run.status == Execution.Status.FAILED
    assert "max_cost" in run.error
    assert len(wire.requests) == 1


def test_an_unknown_tool_is_reported_to_the_model_which_recovers(tenant, wire, wire_model, shop):
    wire.script(
        Reply(tool_calls=(ToolUse("delete_everything", {}),)),
        Reply(text="Sorry, I cannot do that."),
    )

    run = _run(tenant, _agent_graph([_lookup_tool(shop)]), question="?")

    assert run.status == Execution.Status.COMPLETED, run.error
    assert "no tool named" in str(wire.requests[1].body)
    assert shop.received == []


def test_a_workflow_tool_starts_that_workflow(tenant, wire, wire_model):
    child = Automation.objects.create(tenant=tenant, name="Refund", slug="refund")
    done = {"type": "complete", "result": {"id": "{{ context.order_id }}"}}
    child.new_version({"start": "ok", "steps": {"ok": done}}).publish()
    wire.script(
        Reply(tool_calls=(ToolUse("refund", {"order_id": "A-9"}),)),
        Reply(text="Refund started."),
    )
    tool = {
        "type": "workflow",
        "name": "refund",
        "workflow": "refund",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
    }

    run = _run(tenant, _agent_graph([tool]), question="Refund A-9")

    assert run.status == Execution.Status.COMPLETED, run.error
    refund = Execution.objects.get(workflow_name="refund")
    assert refund.tenant_id == tenant.pk
    assert refund.status == Execution.Status.COMPLETED
    assert refund.result == {"id": "A-9"}


def test_agent_graph_validation_names_bad_tools():
    graph = _agent_graph(
        [
            {"type": "teleport", "name": "x"},
            {"type": "workflow", "name": "bad name!"},
            {"type": "workflow", "name": "w"},
        ],
        max_iterations=0,
    )

    problems = dict(validate(graph))

    assert "unknown tool type" in problems["steps.agent.tools[0].type"]
    assert "invalid tool" in problems["steps.agent.tools[1]"]
    assert "workflow" in problems["steps.agent.tools[2].workflow"]
    assert "max_iterations" in str(problems)
