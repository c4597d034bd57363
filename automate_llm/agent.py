"""``llm.agent``: a tool-calling loop in which every model turn and every tool call is its own
checkpointed visit of the step.

.. code-block:: json

    {"type": "llm.agent", "model": "smart",
     "system": "You help customers with their orders.",
     "user": "{{ event.payload.question }}",
     "tools": [{"type": "connector", "name": "lookup_order", "connection": "shop",
                "action": "request", "parameters": {...}}],
     "max_iterations": 6, "max_cost": "0.20", "next": "reply"}

How it runs: a visit either asks the model (one metered call) or runs one tool call the model
asked for; it then returns to the same step (``Goto``) carrying the conversation in its output,
which the engine checkpoints with the visit. A crash therefore resumes at the first visit not
committed: a tool call that completed is never repeated, one that did not is retried with the
same idempotency key. The loop ends when the model answers without tool calls (the step's output
is the answer); it fails after ``max_iterations`` model turns, or when the next turn would start
with ``max_cost`` or ``max_tokens`` already spent by this agent.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from automate_core.errors import AutomateError
from automate_core.workflows.flow import Goto
from automate_core.workflows.steps import (
    Node,
    Problem,
    StepCall,
    StepResult,
    StepType,
    register_step_type,
)
from automate_llm import services
from automate_llm.services import CallContext, CallUsage
from automate_llm.steps import (
    ai_step_tenant,
    call_options,
    conversation,
    response_output,
    validate_conversation,
)
from automate_llm.tools import run_tool, tool_spec, validate_tools
from automate_llm.types import ChatMessage, ToolCall

DEFAULT_MAX_ITERATIONS = 8
#: Characters of a tool result the model is shown; the rest is cut (and said so).
MAX_TOOL_RESULT_CHARS = 20_000


class AgentLimitReached(AutomateError):
    """The agent used up its iterations or its budget cap without a final answer."""

    status_code = 422
    code = "agent_limit_reached"
    default_message = "The agent stopped before it reached an answer."


def _run(node: Node, call: StepCall) -> StepResult:
    state = _state(node, call)
    if state["pending"]:
        return _tool_visit(node, call, state)
    return _model_visit(node, call, state)


def _state(node: Node, call: StepCall) -> dict[str, Any]:
    """The loop so far: the previous visit's output, unless that ended an earlier loop."""
    previous = (call.steps.get(call.step_id) or {}).get("output") or {}
    state = previous.get("agent") if isinstance(previous, Mapping) else None
    if state and not state.get("done"):
        return dict(state)
    messages, version = conversation(node, call.scope(), ai_step_tenant(call))
    return {
        "messages": [m.model_dump(mode="json") for m in messages],
        "pending": [],
        "iterations": 0,
        "tool_calls": [],
        "usage": CallUsage().model_dump(mode="json"),
        "prompt": {"slug": version.prompt.slug, "version": version.version} if version else None,
        "done": False,
    }


def _model_visit(node: Node, call: StepCall, state: dict[str, Any]) -> StepResult:
    usage = CallUsage.model_validate(state["usage"])
    limit = int(node.get("max_iterations") or DEFAULT_MAX_ITERATIONS)
    if state["iterations"] >= limit:
        raise AgentLimitReached(
            f"The agent made {limit} model calls without a final answer (max_iterations)",
            details={"iterations": state["iterations"]},
        )
    _check_caps(node, usage)
    tenant = ai_step_tenant(call)
    scope = call.scope()
    response = services.chat(
        tenant=tenant,
        messages=[ChatMessage.model_validate(m) for m in state["messages"]],
        tools=[tool_spec(t, call) for t in node.get("tools") or []],
        context=CallContext.for_step(call),
        **call_options(node, scope, None),
    )
    result = response.result
    state["iterations"] += 1
    state["usage"] = (usage + response.usage).model_dump(mode="json")
    state["messages"].append(
        ChatMessage(role="assistant", content=result.text, tool_calls=result.tool_calls).model_dump(
            mode="json"
        )
    )
    if result.tool_calls:
        state["pending"] = [c.model_dump(mode="json") for c in result.tool_calls]
        return StepResult(output=_visit_output(state), transition=Goto(call.step_id))
    state["done"] = True
    final = {
        **response_output(response),
        "usage": state["usage"],
        "iterations": state["iterations"],
        "tool_calls": state["tool_calls"],
        "agent": state,
    }
    if state["prompt"]:
        final["prompt"] = state["prompt"]
    return StepResult(output=final)


def _tool_visit(node: Node, call: StepCall, state: dict[str, Any]) -> StepResult:
    requested = ToolCall.model_validate(state["pending"][0])
    tools = {t["name"]: t for t in node.get("tools") or []}
    tool = tools.get(requested.name)
    if tool is None:
        outcome: dict[str, Any] = {"error": f"There is no tool named {requested.name!r}."}
    else:
        try:
            outcome = {"result": run_tool(tool, dict(requested.arguments), call)}
        except AutomateError as exc:  # the model is told and may try another way
            outcome = {"error": exc.message}
    state["pending"] = state["pending"][1:]
    state["tool_calls"].append(
        {"id": requested.id, "name": requested.name, "arguments": requested.arguments, **outcome}
    )
    state["messages"].append(
        ChatMessage(
            role="tool", tool_call_id=requested.id, name=requested.name, content=_shown(outcome)
        ).model_dump(mode="json")
    )
    return StepResult(output=_visit_output(state), transition=Goto(call.step_id))


def _visit_output(state: dict[str, Any]) -> dict[str, Any]:
    return {"agent": state, "usage": state["usage"], "iterations": state["iterations"]}


def _shown(outcome: Mapping[str, Any]) -> str:
    text = json.dumps(outcome.get("result", outcome), default=str)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = text[:MAX_TOOL_RESULT_CHARS] + f"... [cut: {len(text)} characters in all]"
    return text


def _check_caps(node: Node, usage: CallUsage) -> None:
    max_cost = node.get("max_cost")
    if max_cost is not None and usage.cost >= Decimal(str(max_cost)):
        raise AgentLimitReached(
            f"The agent spent {usage.cost} of its max_cost {max_cost}",
            details={"cost": str(usage.cost), "max_cost": str(max_cost)},
        )
    max_tokens = node.get("max_total_tokens")
    spent = usage.input_tokens + usage.output_tokens
    if max_tokens is not None and spent >= int(max_tokens):
        raise AgentLimitReached(
            f"The agent used {spent} of its max_total_tokens {max_tokens}",
            details={"tokens": spent, "max_total_tokens": max_tokens},
        )


def _validate(node: Node, path: str) -> list[Problem]:
    problems = validate_conversation(node, path)
    problems.extend(validate_tools(node.get("tools") or [], f"{path}.tools"))
    iterations = node.get("max_iterations")
    if iterations is not None and (not isinstance(iterations, int) or iterations < 1):
        problems.append((f"{path}.max_iterations", "must be a whole number >= 1"))
    if node.get("max_cost") is not None:
        try:
            if Decimal(str(node["max_cost"])) <= 0:
                raise InvalidOperation
        except InvalidOperation:
            problems.append((f"{path}.max_cost", "must be a positive amount"))
    tokens = node.get("max_total_tokens")
    if tokens is not None and (not isinstance(tokens, int) or tokens < 1):
        problems.append((f"{path}.max_total_tokens", "must be a whole number >= 1"))
    return problems


register_step_type("llm.agent", StepType(_run, _validate))
