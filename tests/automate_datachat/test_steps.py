"""The ``sql.query`` and ``datachat.ask`` graph steps and the code-first helpers, run by the
workflow engine on the shop dataset (``datachat.ask`` against both wire servers)."""

from __future__ import annotations

import pytest

from automate_core.executions.models import Execution, StepRun
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.code import step, workflow
from automate_core.workflows.flow import complete
from automate_core.workflows.graph import validate
from automate_core.workflows.models import Automation
from automate_datachat import steps as datachat_steps
from automate_llm.models import LLMRequest
from automate_llm.testing import Reply

from .shop import B_MARKER
from .test_ask import REVENUE

pytestmark = pytest.mark.django_db


def run_graph(tenant, step_node: dict, **context) -> Execution:
    graph = {
        "start": "data",
        "steps": {
            "data": {**step_node, "next": "done"},
            "done": {"type": "complete", "result": {"sql": "{{ steps.data.output.sql }}"}},
        },
    }
    automation = Automation.objects.create(tenant=tenant, name="Data flow", slug="data-flow")
    automation.new_version(graph).publish()
    run = engine.start("data-flow", tenant=tenant, **context)
    run_until_idle()
    run.refresh_from_db()
    return run


def output_of(run: Execution) -> dict:
    return StepRun.objects.get(execution=run, step_id="data").output


def test_sql_query_binds_rendered_params_as_values(shop_tenants, shop_dataset):
    node = {
        "type": "sql.query",
        "dataset": "shop",
        "sql": "SELECT name FROM customers WHERE country = :country ORDER BY id",
        "params": {"country": "{{ context.country }}"},
    }
    run = run_graph(shop_tenants[0], node, country="de")
    assert run.status == Execution.Status.COMPLETED, run.error
    output = output_of(run)
    assert output["row_count"] > 0 and "$1" in output["sql"]


def test_sql_query_keeps_a_param_that_looks_like_sql_a_value(shop_tenants, shop_dataset):
    node = {
        "type": "sql.query",
        "dataset": "shop",
        "sql": "SELECT name FROM customers WHERE country = :country",
        "params": {"country": "{{ context.country }}"},
    }
    run = run_graph(shop_tenants[0], node, country="de' OR '1'='1")
    assert run.status == Execution.Status.COMPLETED, run.error
    assert output_of(run)["rows"] == []


def test_sql_query_refused_by_the_guard_fails_the_run(shop_tenants, shop_dataset):
    node = {"type": "sql.query", "dataset": "shop", "sql": "SELECT secret_note FROM customers"}
    run = run_graph(shop_tenants[0], node)
    assert run.status == Execution.Status.FAILED
    assert "SQLRejected" in str(run.error) and "column_not_allowed" in str(run.error)


def test_datachat_ask_answers_attributed_to_the_run(shop_tenants, shop_dataset, wire, shop_model):
    wire.script(Reply(output=REVENUE))
    node = {"type": "datachat.ask", "dataset": "shop", "question": "{{ context.q }}"}
    run = run_graph(shop_tenants[0], node, q="Revenue by country?")
    assert run.status == Execution.Status.COMPLETED, run.error
    output = output_of(run)
    assert output["result"]["row_count"] == 5 and output["chart"]["mark"]["type"] == "bar"
    assert B_MARKER not in str(output)
    request = LLMRequest.objects.get(execution_id=run.pk)
    assert (request.step_id, request.idempotency_key) == ("data", f"{run.pk}:data")
    assert run.usage["calls"] == 1


def test_graph_validation_names_bad_datachat_nodes():
    graph = {
        "start": "a",
        "steps": {
            "a": {"type": "sql.query", "dataset": "shop", "sql": "SELECT {{ x }}", "next": "b"},
            "b": {"type": "sql.query", "sql": "SELECT 1", "params": [1], "next": "c"},
            "c": {"type": "datachat.ask", "dataset": "shop", "colour": "red"},
        },
    }
    problems = dict(validate(graph))
    assert "is never templated" in problems["steps.a.sql"]
    assert problems["steps.b.dataset"] == "is required (a string)"
    assert "object" in problems["steps.b.params"]
    assert problems["steps.c.question"] == "is required (a string)"
    assert problems["steps.c.colour"] == "unknown field"


def test_code_first_helpers_query_and_ask_on_the_runs_tenant(
    shop_tenants, shop_dataset, wire, shop_model
):
    wire.script(Reply(output=REVENUE))

    @workflow("datachat-code-test")
    class Report:
        @step(start=True)
        def report(self):
            counted = datachat_steps.query(
                "shop", "SELECT count(*) AS n FROM orders WHERE status = :s", {"s": "paid"}
            )
            answer = datachat_steps.ask("shop", "Revenue by country?")
            return complete(paid=counted.rows[0][0], countries=answer.result.row_count)

    run = engine.start("datachat-code-test", tenant=shop_tenants[0])
    run_until_idle()
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["paid"] > 0 and run.result["countries"] == 5


def test_code_first_helpers_refuse_to_run_outside_a_step():
    with pytest.raises(RuntimeError, match="inside a running workflow step"):
        datachat_steps.query("shop", "SELECT 1")
