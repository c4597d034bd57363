"""``/widgets/v1/<pk>/…``: config, conversations, streamed answers, history and feedback, with
the origin checked and CORS headers given on every request, against the local OpenAI wire
server."""

from __future__ import annotations

import pytest

from automate_core.testing.openapi import assert_events_match_schema
from automate_llm.testing import CutStream, Reply
from widgets.models import WidgetMessage

from .client import Visitor, assert_refused, events
from .conftest import ORIGIN, make_embed

pytestmark = pytest.mark.django_db

ANSWER = "Refunds take five business days [1]."


def test_config_answers_an_allowed_origin_with_cors_headers(embed):
    embed.theme = {"title": "Help"}
    embed.save()
    response = Visitor(embed).get("config")
    assert response.status_code == 200
    assert response.json()["theme"] == {"title": "Help"}
    assert response.json()["target"] == "rag"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert response["Vary"] == "Origin"


def test_a_wildcard_origin_is_answered_for_a_subdomain(endpoint):
    embed = make_embed(endpoint, allowed_origins=["https://*.example.net"])
    response = Visitor(embed, origin="https://docs.example.net").get("config")
    assert response.status_code == 200


@pytest.mark.parametrize(
    "origin", ["https://evil.example", "http://shop.example.com", "https://shop.example.com:8443"]
)
def test_another_origin_is_refused_without_cors_headers(embed, origin):
    response = Visitor(embed, origin=origin).get("config")
    assert_refused(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response


def test_a_request_without_an_origin_is_refused(embed):
    assert_refused(Visitor(embed, origin=None).get("config"), 403, "origin_not_allowed")


def test_a_preflight_from_an_allowed_origin_is_answered(embed):
    response = Visitor(embed).client.options(
        f"/widgets/v1/{embed.publishable_key}/conversations",
        headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
    )
    assert response.status_code == 204
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    assert "Authorization" in response["Access-Control-Allow-Headers"]


def test_a_preflight_from_another_origin_is_refused(embed):
    response = Visitor(embed).client.options(
        f"/widgets/v1/{embed.publishable_key}/conversations",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert_refused(response, 403, "origin_not_allowed")
    assert "Access-Control-Allow-Origin" not in response


def test_an_unknown_or_inactive_key_is_not_found(embed):
    assert_refused(Visitor(embed).client.get("/widgets/v1/pk_nope/config"), 404, "embed_not_found")
    embed.is_active = False
    embed.save()
    assert_refused(Visitor(embed).get("config"), 404, "embed_not_found")


def test_the_answer_streams_with_citations_and_is_stored(embed, model, openai_wire):
    openai_wire.script(Reply(text=ANSWER, chunk_size=8))
    visitor = Visitor(embed)
    assert visitor.start().status_code == 201
    response = visitor.ask()
    assert response["Content-Type"] == "text/event-stream"
    assert response["Access-Control-Allow-Origin"] == ORIGIN
    got = events(response)
    assert_events_match_schema(got, "widget_ask")
    kinds = [kind for kind, _ in got]
    assert kinds[0] == "text" and kinds[-2:] == ["citations", "done"]
    assert "".join(data["text"] for kind, data in got if kind == "text") == ANSWER
    citations = got[-2][1]["citations"]
    assert [c["marker"] for c in citations] == [1]
    assert "refunded within five business days" in citations[0]["snippet"]
    answer = WidgetMessage.objects.get(pk=got[-1][1]["message"])
    assert (answer.text, answer.status, answer.request_id is not None) == (
        ANSWER,
        "complete",
        True,
    )


def test_the_answer_is_charged_to_the_end_users_quota(endpoint, model, openai_wire):
    from automate_core.governance.models import Budget

    embed = make_embed(endpoint, user_quota_tokens=10_000)
    openai_wire.script(Reply(text=ANSWER, input_tokens=40, output_tokens=9))
    visitor = Visitor(embed)
    visitor.start()
    events(visitor.ask())
    charged = Budget.objects.get(
        scope_type="end_user",
        scope_id=f"widget:{embed.pk}:anon:{visitor.conversation}",
        period_start__isnull=False,
    )
    assert (charged.limit_tokens, charged.spent_tokens) == (10_000, 49)


def test_history_lists_the_question_and_the_answer(embed, model, openai_wire):
    openai_wire.script(Reply(text=ANSWER))
    visitor = Visitor(embed)
    visitor.start()
    events(visitor.ask())
    messages = visitor.get(f"conversations/{visitor.conversation}/messages").json()["messages"]
    assert [(m["role"], m["text"]) for m in messages] == [
        ("user", "How long do refunds take?"),
        ("assistant", ANSWER),
    ]


def test_a_broken_model_stream_ends_with_an_error_event_and_a_failed_answer(
    embed, model, openai_wire
):
    openai_wire.script(CutStream(Reply(text="A long answer " * 20, chunk_size=5), after=3))
    visitor = Visitor(embed)
    visitor.start()
    got = events(visitor.ask())
    assert_events_match_schema(got, "widget_ask")
    kind, error = got[-1]
    assert kind == "error"
    assert set(error) == {"code", "message", "details", "trace_id"}
    assert WidgetMessage.objects.get(role="assistant").status == "failed"


def test_feedback_is_stored_on_the_answer(embed, model, openai_wire):
    openai_wire.script(Reply(text=ANSWER))
    visitor = Visitor(embed)
    visitor.start()
    message = events(visitor.ask())[-1][1]["message"]
    response = visitor.post(f"messages/{message}/feedback", {"rating": "down", "comment": "Vague"})
    assert response.status_code == 200
    stored = WidgetMessage.objects.get(pk=message)
    assert (stored.rating, stored.comment) == ("down", "Vague")


def test_feedback_with_an_unknown_rating_is_refused(embed, model, openai_wire):
    openai_wire.script(Reply(text=ANSWER))
    visitor = Visitor(embed)
    visitor.start()
    message = events(visitor.ask())[-1][1]["message"]
    assert_refused(
        visitor.post(f"messages/{message}/feedback", {"rating": "meh"}), 400, "invalid_input"
    )


def test_an_empty_question_is_refused(embed):
    visitor = Visitor(embed)
    visitor.start()
    assert_refused(visitor.ask("  "), 400, "invalid_input")


def test_the_script_is_served_to_any_page(client):
    response = client.get("/widgets/v1/embed.js")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/javascript")
    assert response["Access-Control-Allow-Origin"] == "*"
