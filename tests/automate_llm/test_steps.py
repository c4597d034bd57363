"""AI step types in JSON-graph and code-first workflows, against both wire servers."""

from __future__ import annotations

from decimal import Decimal

import pytest

from automate_core.executions.models import Execution, StepRun
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.code import step, workflow
from automate_core.workflows.flow import complete
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_llm import prompts
from automate_llm import steps as llm_steps
from automate_llm.models import LLMRequest
from automate_llm.testing import Reply, ServerError

pytestmark = pytest.mark.django_db(transaction=True)


def _run_graph(tenant, graph, **kwargs) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="AI flow", slug="ai-flow")
    automation.new_version(graph).publish()
    run = engine.start("ai-flow", tenant=tenant, **kwargs)
    run_until_idle()
    run.refresh_from_db()
    return run


def _chat_graph(**node) -> dict:
    return {
        "start": "ask",
        "steps": {
            "ask": {
                "type": "llm.chat",
                "system": "You are terse.",
                "user": "Summarise: {{ context.text }}",
                "next": "done",
                **node,
            },
            "done": {
                "type": "complete",
                "result": {
                    "answer": "{{ steps.ask.output.text }}",
                    "cost": "{{ steps.ask.output.usage.cost }}",
                },
            },
        },
    }


def test_llm_chat_step_answers_and_records_usage_on_the_run(tenant, wire, wire_model):
    wire.script(Reply(text="Short.", input_tokens=1000, output_tokens=500))

    run = _run_graph(tenant, _chat_graph(), text="a long text")

    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["answer"] == "Short."
    sent = wire.last.body
    assert "Summarise: a long text" in str(sent)
    output = StepRun.objects.get(execution=run, step_id="ask").output
    assert output["usage"]["input_tokens"] == 1000
    assert output["usage"]["output_tokens"] == 500
    assert Decimal(output["usage"]["cost"]) > 0
    assert run.result["cost"] == output["usage"]["cost"]
    assert run.usage["input_tokens"] == 1000
    assert run.usage["calls"] == 1
    assert Decimal(run.usage["cost"]) == Decimal(output["usage"]["cost"])
    request = LLMRequest.objects.get(pk=output["request_id"])
    assert request.execution_id == run.pk
    assert request.step_id == "ask"
    assert request.idempotency_key == f"{run.pk}:ask"
    assert request.trace_id == run.trace_id


def test_the_step_idempotency_key_reaches_the_provider_on_every_attempt(tenant, wire, wire_model):
    wire.script(ServerError(), Reply(text="ok"))

    run = _run_graph(tenant, _chat_graph(), text="x")

    assert run.status == Execution.Status.COMPLETED, run.error
    keys = {r.headers.get("idempotency-key") for r in wire.requests}
    assert keys == {f"{run.pk}:ask"}


def test_a_workflow_budget_scope_applies_to_its_ai_steps(tenant, wire, wire_model):
    from automate_core.governance.models import Budget

    Budget.objects.create(
        tenant=tenant, scope_type="workflow", scope_id="ai-flow", period="total", limit_tokens=10
    )

    run = _run_graph(tenant, _chat_graph(), text="x")

    assert run.status == Execution.Status.FAILED
    assert "budget" in run.error.lower()
    assert wire.requests == []


def test_llm_prompt_step_uses_the_labelled_version_and_records_it(tenant, wire, wire_model):
    prompt = prompts.create_prompt(tenant, name="Triage", slug="triage")
    v1 = prompts.create_version(prompt, user_template="Old: {{ ticket }}", variables=_schema())
    prompts.publish(v1, label="production")
    v2 = prompts.create_version(
        prompt, user_template="Triage this: {{ ticket }}", variables=_schema()
    )
    prompts.publish(v2, label="production")
    graph = {
        "start": "triage",
        "steps": {
            "triage": {
                "type": "llm.prompt",
                "prompt": "triage",
                "label": "production",
                "variables": {"ticket": "{{ context.ticket }}"},
            }
        },
    }

    run = _run_graph(tenant, graph, ticket="printer on fire")

    assert run.status == Execution.Status.COMPLETED, run.error
    assert "Triage this: printer on fire" in str(wire.last.body)
    output = StepRun.objects.get(execution=run, step_id="triage").output
    assert output["prompt"] == {"slug": "triage", "version": 2}
    assert LLMRequest.objects.get(pk=output["request_id"]).prompt_version_id == v2.pk


def test_llm_prompt_step_with_a_missing_variable_fails_with_its_name(tenant, wire, wire_model):
    prompt = prompts.create_prompt(tenant, name="Triage", slug="triage")
    draft = prompts.create_version(prompt, user_template="{{ ticket }}", variables=_schema())
    prompts.publish(draft)
    graph = {"start": "t", "steps": {"t": {"type": "llm.prompt", "prompt": "triage"}}}

    run = _run_graph(tenant, graph)

    assert run.status == Execution.Status.FAILED
    assert "ticket" in run.error
    assert wire.requests == []


def test_llm_structured_step_returns_the_validated_value(tenant, wire, wire_model):
    schema = {
        "type": "object",
        "properties": {"priority": {"type": "string", "enum": ["low", "high"]}},
        "required": ["priority"],
    }
    wire.script(Reply(output={"priority": "high"}))
    graph = {
        "start": "classify",
        "steps": {
            "classify": {"type": "llm.structured", "user": "Classify it", "schema": schema},
        },
    }

    run = _run_graph(tenant, graph)

    assert run.status == Execution.Status.COMPLETED, run.error
    output = StepRun.objects.get(execution=run, step_id="classify").output
    assert output["value"] == {"priority": "high"}
    assert output["repaired"] is False


def test_graph_validation_names_bad_ai_nodes():
    graph = {
        "start": "a",
        "steps": {
            "a": {"type": "llm.chat", "next": "b"},
            "b": {"type": "llm.prompt", "next": "c"},
            "c": {"type": "llm.structured", "user": "x", "next": "d"},
            "d": {"type": "llm.chat", "messages": [{"role": "robot", "content": "x"}]},
        },
    }

    problems = dict(validate(graph))

    assert "needs a prompt" in problems["steps.a"]
    assert problems["steps.b.prompt"] == "is required"
    assert "JSON schema" in problems["steps.c.schema"]
    assert "role" in problems["steps.d.messages[0]"]


def test_code_first_steps_call_models_attributed_to_the_running_step(tenant, wire, wire_model):
    wire.script(Reply(text="Bonjour"))

    @workflow("translate-test")
    class Translate:
        @step(start=True)
        def ask(self):
            answer = llm_steps.chat([{"role": "user", "content": "Say hello in French"}])
            return complete(text=answer.text, cost=str(answer.usage.cost))

    run = engine.start("translate-test", tenant=tenant)
    run_until_idle()
    run.refresh_from_db()

    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["text"] == "Bonjour"
    request = LLMRequest.objects.get(execution_id=run.pk)
    assert request.step_id == "ask"
    assert run.usage["calls"] == 1


def test_code_first_helpers_refuse_to_run_outside_a_step(tenant):
    with pytest.raises(RuntimeError, match="inside a running workflow step"):
        llm_steps.chat([{"role": "user", "content": "hi"}])


def _schema() -> dict:
    return {
        "type": "object",
        "properties": {"ticket": {"type": "string"}},
        "required": ["ticket"],
    }
