"""The ``rag.query`` workflow step and the agent tool built on it."""

from __future__ import annotations

import pytest

from automate_core.errors import InvalidInputError
from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from rag.steps import RAG_QUERY_TOOL, run_query_tool

from .factories import handbook

pytestmark = pytest.mark.django_db

GRAPH = {
    "start": "search",
    "steps": {
        "search": {
            "type": "rag.query",
            "endpoint": "support",
            "query": "{{ context.question }}",
            "top_k": 2,
            "filters": {"topic": "{{ context.topic }}"},
            "next": "done",
        },
        "done": {
            "type": "complete",
            "result": {
                "best": "{{ steps.search.output.results[0].document.external_id }}",
                "context": "{{ steps.search.output.context }}",
            },
        },
    },
}


def _run(tenant, graph, **context) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="Ask")
    automation.new_version(graph).publish()
    run = engine.start(automation.slug, tenant=tenant, **context)
    run_until_idle()
    return Execution.objects.get(pk=run.pk)


def test_a_graph_workflow_queries_an_endpoint_and_uses_the_passages(tenant):
    handbook(tenant)
    run = _run(tenant, GRAPH, question="Lyon warehouse delivery", topic="shipping")
    assert run.status == "completed", run.error
    assert run.result["best"] == "shipping.md"
    assert run.result["context"].startswith("[1] Shipping\nOrders ship from our Lyon warehouse.")


def test_the_step_never_reaches_another_tenants_endpoint(tenant, other_tenant):
    handbook(other_tenant)
    run = _run(tenant, GRAPH, question="refunds", topic="refunds")
    assert run.status == "failed"
    assert "No RAG endpoint" in str(run.error)


def test_graph_validation_names_the_bad_fields_of_a_rag_query_step():
    graph = {
        "start": "s",
        "steps": {"s": {"type": "rag.query", "query": "x", "top_k": 0, "filters": [1], "x": 1}},
    }
    assert sorted(validate(graph)) == [
        ("steps.s.endpoint", "is required (a string)"),
        ("steps.s.filters", "must be an object of metadata filters"),
        ("steps.s.top_k", "must be an integer from 1 to 100"),
        ("steps.s.x", "unknown field"),
    ]


def test_the_agent_tool_runs_the_same_query(tenant):
    handbook(tenant)
    output = run_query_tool(tenant.pk, {"endpoint": "support", "query": "two-factor", "top_k": 1})
    assert output["results"][0]["document"]["external_id"] == "security.md"
    assert set(RAG_QUERY_TOOL["parameters"]["required"]) == {"endpoint", "query"}


def test_the_agent_tool_refuses_arguments_outside_its_schema(tenant):
    with pytest.raises(InvalidInputError, match="unknown field"):
        run_query_tool(tenant.pk, {"endpoint": "support", "query": "x", "sql": "drop"})
