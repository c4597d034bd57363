"""``services.ask`` against the local OpenAI and Anthropic wire servers: the prompt, the guarded
answer with its chart, the repair round, budgets, examples and follow-ups."""

from __future__ import annotations

import json

import pytest

from automate_core.governance.budgets import BudgetExceeded
from automate_core.governance.models import Budget
from automate_datachat import services, sessions
from automate_datachat.errors import SQLRejected
from automate_datachat.models import DataChatMessage, DatasetExample
from automate_llm.services import CallContext
from automate_llm.testing import Reply

from .shop import B_MARKER

pytestmark = pytest.mark.django_db

REVENUE = {
    "sql": "SELECT country, sum(o.total) AS revenue FROM orders o JOIN customers c "
    "ON c.id = o.customer_id GROUP BY country ORDER BY country",
    "explanation": "Revenue per country.",
    "chart": {
        "mark": "bar",
        "x": {"field": "country", "type": "nominal"},
        "y": {"field": "revenue", "type": "quantitative"},
        "color": None,
        "title": "Revenue by country",
    },
}


def prompt_text(request) -> str:
    """Everything the model was sent, as one string (both wire dialects)."""
    return json.dumps(request.body)


def ask(tenant, question="Revenue by country?", **kwargs):
    return services.ask(
        tenant=tenant, dataset="shop", question=question, context=CallContext(), **kwargs
    )


def test_a_question_is_answered_with_guarded_sql_rows_and_a_chart(
    shop_tenants, shop_dataset, wire, shop_model
):
    wire.script(Reply(output=REVENUE))
    answer = ask(shop_tenants[0])
    assert [c.name for c in answer.result.columns] == ["country", "revenue"]
    assert answer.result.row_count == 5
    assert "tenant_id" in answer.sql  # what ran is the guard's rewrite
    assert answer.chart["mark"]["type"] == "bar"
    assert len(answer.chart["data"]["values"]) == 5
    assert answer.usage.input_tokens > 0 and not answer.repaired
    assert B_MARKER not in json.dumps(answer.to_json())


def test_the_prompt_carries_the_schema_descriptions_and_samples(
    shop_tenants, shop_dataset, wire, shop_model
):
    wire.script(Reply(output=REVENUE))
    ask(shop_tenants[0])
    sent = prompt_text(wire.last)
    assert "Table customers" in sent and "Full name" in sent and "wholesale" not in sent
    assert '\\"de\\"' in sent  # a sample value of country
    assert "secret_note" not in sent and "internal_cost" not in sent


def test_the_most_similar_examples_go_into_the_prompt(shop_tenants, shop_dataset, wire, shop_model):
    tenant = shop_tenants[0]
    services.add_example(
        tenant=tenant,
        dataset="shop",
        question="Revenue per country last year",
        sql="SELECT 'similar-example' AS marker FROM orders",
    )
    services.add_example(
        tenant=tenant,
        dataset="shop",
        question="Customers who signed up in May",
        sql="SELECT 'unrelated-example' AS marker FROM customers",
    )
    wire.script(Reply(output=REVENUE))
    ask(tenant)
    sent = prompt_text(wire.last)
    assert "similar-example" in sent and "unrelated-example" not in sent


def test_an_example_whose_sql_the_guard_refuses_is_not_stored(shop_tenants, shop_dataset):
    with pytest.raises(SQLRejected):
        services.add_example(
            tenant=shop_tenants[0],
            dataset="shop",
            question="All secrets",
            sql="SELECT secret_note FROM customers",
        )
    assert not DatasetExample.objects.exists()


def test_a_refused_sql_is_repaired_once_with_the_error(
    shop_tenants, shop_dataset, wire, shop_model
):
    bad = {**REVENUE, "sql": "SELECT pg_read_file('/etc/passwd')"}
    wire.script(Reply(output=bad), Reply(output=REVENUE))
    answer = ask(shop_tenants[0])
    assert answer.repaired and answer.result.row_count == 5
    assert len(wire.requests) == 2 and len(answer.request_ids) == 2
    repair = prompt_text(wire.requests[1])
    assert "function_not_allowed" in repair and "pg_read_file" in repair


def test_sql_refused_by_postgres_is_repaired_too(shop_tenants, shop_dataset, wire, shop_model):
    wrong = {**REVENUE, "sql": "SELECT 1 / 0 AS boom FROM orders"}
    wire.script(Reply(output=wrong), Reply(output=REVENUE))
    answer = ask(shop_tenants[0])
    assert answer.repaired
    assert "22012" in prompt_text(wire.requests[1])  # division_by_zero


def test_a_second_refusal_raises_and_the_turn_keeps_the_error(
    shop_tenants, shop_dataset, wire, shop_model
):
    session = sessions.open_session(tenant=shop_tenants[0], dataset="shop")
    bad = {**REVENUE, "sql": "DELETE FROM orders"}
    wire.script(Reply(output=bad), Reply(output=bad))
    with pytest.raises(SQLRejected):
        ask(shop_tenants[0], session=session)
    answer = session.messages.get(role=DataChatMessage.Role.ASSISTANT)
    assert answer.error["code"] == "sql_rejected" and answer.data == {}
    assert len(wire.requests) == 2


def test_an_exhausted_budget_refuses_before_anything_is_sent(
    shop_tenants, shop_dataset, wire, shop_model
):
    Budget.objects.create(
        tenant=shop_tenants[0],
        scope_type="tenant",
        scope_id=str(shop_tenants[0].pk),
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )
    with pytest.raises(BudgetExceeded):
        ask(shop_tenants[0])
    assert wire.requests == []


def test_a_follow_up_question_carries_the_session_history(
    shop_tenants, shop_dataset, wire, shop_model
):
    tenant = shop_tenants[0]
    session = sessions.open_session(tenant=tenant, dataset="shop")
    wire.script(Reply(output=REVENUE), Reply(output=REVENUE))
    ask(tenant, session=session)
    ask(tenant, question="And only for Germany?", session=session)
    sent = prompt_text(wire.last)
    assert "Revenue by country?" in sent and "Revenue per country." in sent
    assert "And only for Germany?" in sent
    assert session.messages.count() == 4
    stored = session.messages.filter(role="assistant").first()
    assert stored.data["row_count"] == 5 and stored.chart["mark"]["type"] == "bar"


def test_a_session_of_another_dataset_is_not_used(shop_tenants, shop_dataset):
    session = sessions.open_session(tenant=shop_tenants[0], dataset="other")
    with pytest.raises(sessions.SessionNotFound):
        ask(shop_tenants[0], session=session)


def test_a_chart_naming_a_missing_column_is_dropped_not_the_answer(
    shop_tenants, shop_dataset, wire, shop_model
):
    chart = {**REVENUE["chart"], "y": {"field": "profit", "type": "quantitative"}}
    wire.script(Reply(output={**REVENUE, "chart": chart}))
    answer = ask(shop_tenants[0])
    assert answer.chart is None and answer.result.row_count == 5


def test_the_admin_form_refuses_an_example_the_guard_refuses(shop_tenants, shop_dataset):
    from django.core.exceptions import ValidationError

    example = DatasetExample(
        tenant=shop_tenants[0], dataset="shop", question="q", sql="SELECT pg_sleep(1)"
    )
    with pytest.raises(ValidationError) as caught:
        example.full_clean()
    assert "function_not_allowed" in str(caught.value)
