"""``GET /api/v1/llm/usage``: the caller's tenant's calls, tokens and cost by day and model."""

from __future__ import annotations

import datetime as dt

import pytest
from django.db.models import QuerySet
from rest_framework.test import APIClient

from automate_core.governance.budgets import BudgetExceeded
from automate_core.governance.models import Budget
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.testing.runtime import run_until_idle
from automate_llm.errors import ProviderUnavailable
from automate_llm.metering import CallContext, start_call
from automate_llm.models import LLMProvider, LLMRequest
from automate_llm.types import ChatMessage, ChatOptions, ChatResult, Usage

pytestmark = pytest.mark.django_db

URL = "/api/v1/llm/usage"
DAY_1 = dt.datetime(2026, 3, 1, 12, 0, tzinfo=dt.UTC)
DAY_2 = dt.datetime(2026, 3, 2, 23, 59, tzinfo=dt.UTC)
PERIOD = {"from": "2026-03-01", "to": "2026-03-02"}


def call(
    tenant: Tenant,
    *,
    model: str = "gpt-4o",
    provider_type: str = "openai",
    usage: Usage | None = None,
    at: dt.datetime = DAY_1,
    fail: bool = False,
) -> LLMRequest:
    """One gateway call through the metering service, dated ``at``."""
    provider, _ = LLMProvider.objects.get_or_create(
        tenant=tenant, provider_type=provider_type, defaults={"name": provider_type}
    )
    metered = start_call(
        tenant=tenant,
        provider=provider,
        model=model,
        messages=[ChatMessage(role="user", content="hello")],
        options=ChatOptions(model=model, max_tokens=10),
        context=CallContext(),
    )
    if fail:
        record = metered.failed(ProviderUnavailable(), attempts=3)
    else:
        result = ChatResult(text="hi", usage=usage or Usage(input_tokens=10, output_tokens=5))
        charged = metered.succeeded(result, attempts=1, provider=provider, model=model)
        run_until_idle()  # the llm.record job writes the rows
        record = LLMRequest.objects.get(pk=charged.request_id)
    _redate(LLMRequest.objects.filter(pk=record.pk), at)
    return record


def _redate(requests: QuerySet[LLMRequest], at: dt.datetime) -> None:
    for request in requests:
        LLMRequest.objects.filter(pk=request.pk).update(created_at=at)
        if hasattr(request, "usage"):
            type(request.usage).objects.filter(pk=request.usage.pk).update(created_at=at)


@pytest.fixture
def history(tenant):
    million = Usage(input_tokens=1_000_000, output_tokens=100_000, cached_tokens=200_000)
    call(tenant, usage=million, at=DAY_1)  # 0.8M*2.5 + 0.2M*1.25 + 0.1M*10 = 3.25
    call(tenant, model="gpt-4o-mini", usage=Usage(input_tokens=1_000_000), at=DAY_1)  # 0.15
    call(
        tenant,
        model="claude-haiku-4-5",
        provider_type="anthropic",
        usage=Usage(input_tokens=1000, output_tokens=1000),  # 0.006
        at=DAY_2,
    )
    call(tenant, at=DAY_2, fail=True)
    call(tenant, at=DAY_1 - dt.timedelta(days=1))  # outside the period


def get(client: APIClient, **params: str):
    return client.get(URL, {**PERIOD, **params})


def test_report_groups_by_day_by_default(api_client, history):
    response = get(api_client)

    assert response.status_code == 200
    body = response.json()
    assert body["group_by"] == ["day"]
    assert body["currency"] == "USD"
    assert [(r["day"], r["calls"], r["failed_calls"], r["cost"]) for r in body["results"]] == [
        ("2026-03-01", 2, 0, "3.400000"),
        ("2026-03-02", 2, 1, "0.006000"),
    ]
    first = body["results"][0]
    assert (first["input_tokens"], first["output_tokens"], first["cached_tokens"]) == (
        2_000_000,
        100_000,
        200_000,
    )
    assert body["totals"]["calls"] == 4 and body["totals"]["cost"] == "3.406000"


def test_report_groups_by_model(api_client, history):
    body = get(api_client, group_by="model").json()

    rows = {(r["provider_type"], r["model"]): r for r in body["results"]}
    assert set(rows) == {
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("anthropic", "claude-haiku-4-5"),
    }
    assert (rows[("openai", "gpt-4o")]["calls"], rows[("openai", "gpt-4o")]["failed_calls"]) == (
        2,
        1,
    )
    assert rows[("openai", "gpt-4o")]["cost"] == "3.250000"
    assert "day" not in rows[("openai", "gpt-4o")]


def test_report_groups_by_day_and_model(api_client, history):
    body = get(api_client, group_by="model,day").json()

    assert body["group_by"] == ["day", "model"]
    assert [(r["day"], r["model"], r["calls"]) for r in body["results"]] == [
        ("2026-03-01", "gpt-4o", 1),
        ("2026-03-01", "gpt-4o-mini", 1),
        ("2026-03-02", "claude-haiku-4-5", 1),
        ("2026-03-02", "gpt-4o", 1),
    ]


def test_a_date_to_includes_that_whole_day_and_a_datetime_to_excludes_itself(api_client, history):
    whole_day = get(api_client, to="2026-03-01").json()
    until_noon = get(api_client, to="2026-03-01T12:00:00Z").json()

    assert whole_day["totals"]["calls"] == 2
    assert whole_day["end"].startswith("2026-03-02T00:00:00")
    assert until_noon["totals"]["calls"] == 0


def test_a_refused_call_counts_as_a_failed_call_without_tokens(api_client, tenant):
    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=1,
    )
    with pytest.raises(BudgetExceeded):
        call(tenant)
    _redate(LLMRequest.objects.filter(tenant=tenant), DAY_1)

    (row,) = get(api_client).json()["results"]

    assert (row["calls"], row["failed_calls"], row["input_tokens"], row["cost"]) == (
        1,
        1,
        0,
        "0.000000",
    )


def test_old_rows_are_reported_at_the_price_they_were_charged(api_client, tenant, settings):
    call(tenant, usage=Usage(input_tokens=1_000_000))
    settings.AUTOMATE_LLM = {"PRICING": {"openai/gpt-4o": {"input": "100", "output": "100"}}}

    assert get(api_client).json()["totals"]["cost"] == "2.500000"


def test_default_period_is_the_last_30_days(api_client, tenant):
    call(tenant, at=dt.datetime.now(dt.UTC))
    call(tenant, at=dt.datetime.now(dt.UTC) - dt.timedelta(days=45))

    assert api_client.get(URL).json()["totals"]["calls"] == 1


def test_another_tenants_calls_are_never_counted(api_client, tenant, other_tenant, history):
    call(other_tenant, usage=Usage(input_tokens=7_777_777), at=DAY_1)

    body = get(api_client, group_by="day,model").json()

    assert body["totals"]["calls"] == 4
    assert all(r["input_tokens"] != 7_777_777 for r in body["results"])


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"group_by": "week"}, "group_by"),
        ({"group_by": "day,day"}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-45"}, "to"),
        ({"from": "2026-03-05", "to": "2026-03-01"}, "from"),
        ({"from": "2024-01-01", "to": "2026-01-01"}, "from"),
    ],
)
def test_bad_parameters_are_a_normalized_400(api_client, params, field):
    response = api_client.get(URL, params)

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    assert field in body["details"] and body["trace_id"]


def test_a_key_without_the_usage_scope_is_refused(tenant):
    _, raw = APIKey.issue(tenant=tenant, name="events only", scopes=["events:write"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    response = client.get(URL)

    assert response.status_code == 403
    assert "llm:usage" in response.json()["message"]


def test_a_key_scoped_for_usage_may_read_it(tenant):
    _, raw = APIKey.issue(tenant=tenant, name="billing", scopes=["llm:usage"])
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")

    assert client.get(URL).status_code == 200


def test_anonymous_callers_get_401():
    assert APIClient().get(URL).status_code == 401


def test_schema_documents_the_usage_report(client):
    schema = client.get("/api/schema/?format=json").json()

    operation = schema["paths"]["/api/v1/llm/usage"]["get"]
    assert {p["name"] for p in operation["parameters"]} == {"group_by", "from", "to"}
    report = schema["components"]["schemas"]["UsageReport"]
    assert {"results", "totals", "group_by"} <= set(report["properties"])
    # Money is a decimal string, never a float.
    assert schema["components"]["schemas"]["UsageRow"]["properties"]["cost"]["type"] == "string"
