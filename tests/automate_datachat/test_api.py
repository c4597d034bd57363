"""``/api/v1/datachat/``: JSON and SSE answers against the local wire servers, the SQL
endpoint, sessions, messages, chart images and examples; key scopes, budgets, rate limits and
tenant isolation."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import Budget
from automate_core.tenancy.models import APIKey
from automate_core.testing.openapi import assert_events_match_schema
from automate_datachat.models import DataChatMessage, DataChatSession, Dataset, DatasetTable
from automate_llm.testing import Reply

from .conftest import TEST_SETTINGS
from .shop import B_MARKER, CUSTOMERS
from .test_ask import REVENUE

pytestmark = pytest.mark.django_db

ASK = "/api/v1/datachat/shop/ask"
QUESTION = {"question": "Revenue by country?"}


def key_client(tenant, scopes: list[str] | None = None) -> tuple[APIClient, APIKey]:
    scopes = ["datachat:shop"] if scopes is None else scopes
    key, raw = APIKey.issue(tenant=tenant, name="datachat", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client, key


def events(response) -> list[tuple[str, dict[str, Any]]]:
    raw = b"".join(response.streaming_content).decode()
    parsed = []
    for block in raw.split("\n\n"):
        if block.strip():
            fields = dict(line.split(": ", 1) for line in block.splitlines())
            parsed.append((fields["event"], json.loads(fields["data"])))
    return parsed


# -- asking ---------------------------------------------------------------------------------------


def test_a_json_answer_has_sql_rows_chart_usage_and_a_session(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, key = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    response = client.post(ASK, {**QUESTION, "end_user": "analyst-1"}, format="json")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["result"]["row_count"] == 5 and body["result"]["columns"][0]["name"] == "country"
    assert body["chart"]["mark"]["type"] == "bar" and body["usage"]["input_tokens"] > 0
    session = DataChatSession.objects.get(pk=body["session"])
    assert (session.api_key_id, session.end_user) == (key.pk, "analyst-1")
    assert session.messages.count() == 2


def test_an_sse_answer_sends_sql_rows_chart_answer_and_done(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    response = client.post(ASK, {**QUESTION, "stream": True}, format="json")
    assert response.status_code == 200
    assert response["Content-Type"] == "text/event-stream"
    received = events(response)
    assert_events_match_schema(received, "datachat_ask")
    assert [name for name, _ in received] == ["sql", "rows", "chart", "answer", "done"]
    assert received[0][1]["sql"] == REVENUE["sql"]
    assert received[1][1]["row_count"] == 5
    assert received[4][1]["session"] == received[3][1]["session"]


def test_sse_is_chosen_by_the_accept_header_too(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    response = client.post(ASK, QUESTION, format="json", HTTP_ACCEPT="text/event-stream")
    assert [name for name, _ in events(response)][-1] == "done"


def test_a_repaired_answer_streams_both_sqls(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    bad = {**REVENUE, "sql": "SELECT * FROM pg_shadow"}
    wire.script(Reply(output=bad), Reply(output=REVENUE))
    received = events(client.post(ASK, {**QUESTION, "stream": True}, format="json"))
    assert [name for name, _ in received][:3] == ["sql", "sql", "rows"]
    assert received[3 if received[3][0] == "answer" else 4][1]["repaired"] is True


def test_sql_refused_twice_ends_the_stream_with_a_normalized_error(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, _ = key_client(shop_tenants[0])
    bad = {**REVENUE, "sql": "UPDATE orders SET total = 0"}
    wire.script(Reply(output=bad), Reply(output=bad))
    received = events(client.post(ASK, {**QUESTION, "stream": True}, format="json"))
    assert_events_match_schema(received, "datachat_ask")
    assert [name for name, _ in received] == ["sql", "sql", "error"]
    error = received[-1][1]
    assert error["code"] == "sql_rejected" and error["trace_id"]
    assert set(error) == {"code", "message", "details", "trace_id"}


def test_sql_refused_twice_is_a_json_error_too(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    bad = {**REVENUE, "sql": "UPDATE orders SET total = 0"}
    wire.script(Reply(output=bad), Reply(output=bad))
    response = client.post(ASK, QUESTION, format="json")
    assert response.status_code == 400 and response.json()["code"] == "sql_rejected"


def test_an_exhausted_key_budget_is_402_before_anything_is_sent(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, key = key_client(shop_tenants[0])
    Budget.objects.create(
        tenant=shop_tenants[0],
        scope_type="api_key",
        scope_id=str(key.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )
    for body in (QUESTION, {**QUESTION, "stream": True}):
        response = client.post(ASK, body, format="json")
        assert response.status_code == 402
        assert response["Content-Type"] == "application/json"
        assert response.json()["code"] == "budget_exceeded"
    assert wire.requests == []


def test_a_follow_up_in_the_same_session_carries_its_history(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE), Reply(output=REVENUE))
    first = client.post(ASK, QUESTION, format="json").json()
    follow = {"question": "Only Germany?", "session": first["session"]}
    second = client.post(ASK, follow, format="json").json()
    assert second["session"] == first["session"]
    assert "Revenue by country?" in json.dumps(wire.last.body)


def test_asking_is_rate_limited_per_key(settings, shop_tenants, shop_dataset, wire, shop_model):
    settings.AUTOMATE_DATACHAT = {**TEST_SETTINGS, "ASK_RATE_LIMIT": "1/min"}
    client, _ = key_client(shop_tenants[0])
    other, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE), Reply(output=REVENUE))
    assert client.post(ASK, QUESTION, format="json").status_code == 200
    limited = client.post(ASK, QUESTION, format="json")
    assert limited.status_code == 429 and limited.json()["code"] == "throttled"
    assert other.post(ASK, QUESTION, format="json").status_code == 200


# -- scopes and tenants ---------------------------------------------------------------------------


def test_a_key_scoped_to_another_dataset_cannot_ask(shop_tenants, shop_dataset):
    client, _ = key_client(shop_tenants[0], ["datachat:sales"])
    response = client.post(ASK, QUESTION, format="json")
    assert response.status_code == 403


def test_a_dataset_of_another_tenant_is_not_found(shop_tenants, shop_dataset):
    dataset = Dataset.objects.create(tenant=shop_tenants[0], name="Mine", slug="mine")
    DatasetTable.objects.create(
        dataset=dataset,
        alias="people",
        relation=CUSTOMERS,
        columns=["id"],
        tenant_column="tenant_id",
    )
    client, _ = key_client(shop_tenants[1], ["datachat:*"])
    response = client.post("/api/v1/datachat/mine/sql", {"sql": "SELECT 1"}, format="json")
    assert response.status_code == 404
    assert response.json()["code"] == "datachat_dataset_not_found"


def test_sessions_and_messages_of_another_tenant_or_key_are_not_found(
    shop_tenants, shop_dataset, wire, shop_model
):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    session = client.post(ASK, QUESTION, format="json").json()["session"]
    messages = f"/api/v1/datachat/sessions/{session}/messages"
    assert client.get(messages).status_code == 200
    same_tenant, _ = key_client(shop_tenants[0])
    other_tenant, _ = key_client(shop_tenants[1])
    for stranger in (same_tenant, other_tenant):
        assert stranger.get(messages).status_code == 404
        assert stranger.get("/api/v1/datachat/sessions").json()["results"] == []
    continued = {"question": "again", "session": session}
    assert other_tenant.post(ASK, continued, format="json").status_code == 404


# -- SQL, sessions, messages, charts ------------------------------------------------------------


def test_running_sql_needs_the_sql_scope(shop_tenants, shop_dataset):
    client, _ = key_client(shop_tenants[0])
    response = client.post("/api/v1/datachat/shop/sql", {"sql": "SELECT 1"}, format="json")
    assert response.status_code == 403


def test_given_sql_runs_through_the_guard_on_the_tenants_rows(shop_tenants, shop_dataset):
    client, _ = key_client(shop_tenants[0], ["datachat:shop", "datachat:sql"])
    url = "/api/v1/datachat/shop/sql"
    ok = client.post(url, {"sql": "SELECT name FROM customers ORDER BY id"}, format="json")
    assert ok.status_code == 200 and ok.json()["row_count"] == 40
    assert B_MARKER not in json.dumps(ok.json())
    refused = client.post(url, {"sql": "SELECT secret_note FROM customers"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "sql_rejected"
    failed = client.post(url, {"sql": "SELECT 1 / 0 AS x FROM orders"}, format="json")
    assert failed.status_code == 422 and failed.json()["details"]["sqlstate"] == "22012"


def test_messages_list_the_stored_turns(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    session = client.post(ASK, QUESTION, format="json").json()["session"]
    listed = client.get("/api/v1/datachat/sessions").json()["results"]
    assert [row["id"] for row in listed] == [session]
    messages = client.get(f"/api/v1/datachat/sessions/{session}/messages").json()["results"]
    assert {m["role"] for m in messages} == {"user", "assistant"}
    answer = next(m for m in messages if m["role"] == "assistant")
    assert answer["data"]["row_count"] == 5 and answer["sql"].startswith("SELECT")


def test_a_charts_image_is_rendered_as_svg_and_png(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    wire.script(Reply(output=REVENUE))
    body = client.post(ASK, QUESTION, format="json").json()
    base = f"/api/v1/datachat/sessions/{body['session']}/messages/{body['message']}/chart"
    svg = client.get(f"{base}.svg")
    assert svg.status_code == 200 and svg["Content-Type"] == "image/svg+xml"
    assert svg.content.lstrip().startswith(b"<svg")
    png = client.get(f"{base}.png")
    assert png["Content-Type"] == "image/png" and png.content.startswith(b"\x89PNG")
    question = DataChatMessage.objects.get(session_id=body["session"], role="user")
    url = f"/api/v1/datachat/sessions/{body['session']}/messages/{question.pk}/chart.svg"
    assert client.get(url).status_code == 404


def test_an_answers_rows_download_as_formula_safe_csv(shop_tenants, shop_dataset, wire, shop_model):
    client, _ = key_client(shop_tenants[0])
    sql = (
        "SELECT country, '=1+1' AS note, -sum(o.total) AS refund, NULL AS nothing "
        "FROM orders o JOIN customers c ON c.id = o.customer_id GROUP BY country ORDER BY country"
    )
    wire.script(Reply(output={**REVENUE, "sql": sql, "chart": None}))
    body = client.post(ASK, QUESTION, format="json").json()
    url = f"/api/v1/datachat/sessions/{body['session']}/messages/{body['message']}/results.csv"
    response = client.get(url)
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    lines = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert lines[0] == ["country", "note", "refund", "nothing"]
    assert len(lines) == 1 + body["result"]["row_count"]
    first = body["result"]["rows"][0]
    assert lines[1] == [first[0], "'=1+1", first[2], ""] and first[2].startswith("-")
    other_tenant, _ = key_client(shop_tenants[1], ["datachat:shop"])
    assert other_tenant.get(url).status_code == 404


# -- examples -----------------------------------------------------------------------------------


def test_examples_are_created_listed_changed_and_deleted(shop_tenants, shop_dataset):
    client, _ = key_client(shop_tenants[0], ["datachat:shop", "datachat-examples:shop"])
    url = "/api/v1/datachat/shop/examples"
    example = {"question": "How many customers?", "sql": "SELECT count(*) FROM customers"}
    created = client.post(url, example, format="json")
    assert created.status_code == 201, created.content
    detail = f"{url}/{created.json()['id']}"
    assert [e["question"] for e in client.get(url).json()["results"]] == ["How many customers?"]
    changed = client.patch(detail, {"sql": "SELECT count(id) FROM customers"}, format="json")
    assert changed.status_code == 200 and changed.json()["sql"].startswith("SELECT count(id)")
    refused = client.patch(detail, {"sql": "SELECT pg_sleep(9)"}, format="json")
    assert refused.status_code == 400 and refused.json()["code"] == "sql_rejected"
    assert client.delete(detail).status_code == 204
    assert client.get(url).json()["results"] == []


def test_changing_examples_needs_the_examples_scope(shop_tenants, shop_dataset):
    client, _ = key_client(shop_tenants[0])
    url = "/api/v1/datachat/shop/examples"
    example = {"question": "q", "sql": "SELECT 1"}
    assert client.get(url).status_code == 200
    assert client.post(url, example, format="json").status_code == 403


def test_the_openapi_schema_documents_the_datachat_api():
    from drf_spectacular.generators import SchemaGenerator

    paths = SchemaGenerator().get_schema(request=None, public=True)["paths"]
    assert "/api/v1/datachat/{dataset}/ask" in paths
    assert "/api/v1/datachat/sessions/{session}/messages" in paths
    results = paths["/api/v1/datachat/sessions/{session}/messages/{message}/results.csv"]["get"]
    assert "text/csv" in results["responses"]["200"]["content"]
