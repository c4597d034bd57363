"""Code-first classes and JSON graphs compile to the same executable form."""

from datetime import timedelta

import pytest
from pydantic import BaseModel

from automate_core.workflows import registry
from automate_core.workflows.code import WorkflowDefinitionError, compile_class, step, workflow
from automate_core.workflows.compiled import StepCall, get_context
from automate_core.workflows.flow import (
    NO_RETRY,
    Complete,
    Goto,
    Retry,
    WaitSignal,
    complete,
    transition_from_dict,
    transition_to_dict,
    wait,
)
from automate_core.workflows.graph import GraphInvalid, compile_graph, validate


class Approval:
    class Context(BaseModel):
        user: str
        approved: bool = False

    @step(start=True, retry=Retry(max_attempts=4))
    def ask(self):
        return wait("approved", timeout=timedelta(hours=1), on_timeout="expire", then="finish")

    @step()
    def expire(self):
        get_context().approved = False

    @step()
    def finish(self):
        return complete(user=get_context().user)


def call(compiled, step_id, context, **kw):
    return StepCall(
        execution_id="e1",
        step_id=step_id,
        attempt=1,
        idempotency_key=f"e1:{step_id}",
        context=compiled.load_context(context),
        **kw,
    )


def test_code_workflow_compiles_steps_in_declaration_order():
    compiled = compile_class(Approval, name="approval", default_retry=NO_RETRY)
    assert compiled.start == "ask"
    assert [s for s in compiled.steps] == ["ask", "expire", "finish"]
    assert compiled.steps["ask"].retry.max_attempts == 4
    assert compiled.steps["expire"].next == "finish"
    assert compiled.steps["finish"].next is None


def test_code_step_sees_its_context_and_returns_its_transition():
    compiled = compile_class(Approval, name="approval", default_retry=NO_RETRY)
    result = compiled.steps["finish"].run(call(compiled, "finish", {"user": "ada"}))
    assert result.transition == Complete({"user": "ada"})
    waiting = compiled.steps["ask"].run(call(compiled, "ask", {"user": "ada"}))
    assert waiting.transition == WaitSignal("approved", timedelta(hours=1), "expire", "finish")


def test_version_is_stable_for_the_same_code():
    first = compile_class(Approval, name="approval", default_retry=NO_RETRY)
    second = compile_class(Approval, name="approval", default_retry=NO_RETRY)
    other = compile_class(Approval, name="approval", default_retry=Retry(max_attempts=9))
    assert first.version == second.version != other.version


def test_signal_payload_merges_only_into_existing_fields():
    compiled = compile_class(Approval, name="approval", default_retry=NO_RETRY)
    merged = compiled.merge_into_context(
        {"user": "ada", "approved": False}, {"approved": True, "x": 1}
    )
    assert merged == {"user": "ada", "approved": True}


def test_workflow_without_steps_is_refused():
    class Empty:
        pass

    with pytest.raises(WorkflowDefinitionError, match="no @step"):
        compile_class(Empty, name="empty", default_retry=NO_RETRY)


def test_decorator_registers_by_name():
    @workflow("test-registered")
    class Registered:
        @step()
        def only(self):
            return None

    try:
        assert registry.get("test-registered").start == "only"
    finally:
        registry.unregister("test-registered")


def test_get_context_outside_a_step_is_an_error():
    with pytest.raises(RuntimeError, match="inside a running workflow step"):
        get_context()


@pytest.mark.parametrize(
    "transition",
    [Goto("x"), WaitSignal("s", timedelta(seconds=5), "t", "n"), Complete({"a": 1})],
)
def test_transitions_round_trip_through_json(transition):
    assert transition_from_dict(transition_to_dict(transition)) == transition


GRAPH = {
    "start": "lookup",
    "steps": {
        "lookup": {
            "type": "connector",
            "connector": "echo",
            "action": "echo",
            "input": {"order": "{{ event.payload.order_id }}"},
            "next": "route",
        },
        "route": {
            "type": "branch",
            "branches": [{"when": {">": [{"var": "event.payload.amount"}, 100]}, "next": "big"}],
            "default": "done",
        },
        "big": {"type": "complete", "result": {"size": "big"}},
        "done": {
            "type": "complete",
            "result": {"order": "{{ steps.lookup.output.data.params.order }}"},
        },
    },
}


def test_valid_graph_has_no_problems():
    assert validate(GRAPH) == []


def test_validate_reports_every_problem_with_its_path():
    broken = {
        "start": "nope",
        "steps": {
            "a": {"type": "connector", "connector": "missing", "action": "x", "next": "zz"},
            "b": {"type": "teleport"},
            "c": {"type": "wait", "timeout": -1},
            "d": {"type": "noop", "retry": {"max_attempts": 0, "speed": 1}},
        },
    }
    paths = {path for path, _ in validate(broken)}
    assert paths == {
        "start",
        "steps.a.next",
        "steps.a.connector",
        "steps.b.type",
        "steps.c.signal",
        "steps.c.timeout",
        "steps.d.retry.max_attempts",
        "steps.d.retry.speed",
    }


def test_compile_refuses_an_invalid_graph():
    with pytest.raises(GraphInvalid) as info:
        compile_graph({"start": "a", "steps": {}}, name="x")
    assert info.value.problems == [("steps", "must be a non-empty object of step id -> step")]


def test_graph_steps_run_connectors_and_branches():
    compiled = compile_graph(GRAPH, name="orders")
    event = {"payload": {"order_id": "A-1", "amount": 10}}
    looked_up = compiled.steps["lookup"].run(call(compiled, "lookup", {}, event=event))
    assert looked_up.output["data"] == {"params": {"order": "A-1"}, "idempotency_key": "e1:lookup"}
    steps = {"lookup": {"output": looked_up.output}}
    routed = compiled.steps["route"].run(call(compiled, "route", {}, event=event, steps=steps))
    assert routed.transition == Goto("done")
    done = compiled.steps["done"].run(call(compiled, "done", {}, event=event, steps=steps))
    assert done.transition == Complete({"order": "A-1"})
