"""Data-chat embeds: the answer streams as the explanation, a table and a chart image, and the
signed visitor's claims reach the dataset's row filters, so each customer reads only their own
rows."""

from __future__ import annotations

import base64

import pytest

from automate_core.testing.openapi import assert_events_match_schema
from automate_llm.testing import Reply
from widgets.tokens import mint

from .client import Visitor, assert_refused, events
from .conftest import ORIGIN
from .datachat import ORDERS_BY_CUSTOMER, make_datachat_embed

pytestmark = pytest.mark.django_db


def answer_of(embed, customer: int) -> dict[str, dict]:
    visitor = Visitor(embed)
    assert visitor.start(mint(embed, f"c-{customer}", {"customer": customer})).status_code == 201
    response = visitor.ask("How many orders do I have?")
    assert response.status_code == 200, response.content
    got = events(response)
    assert_events_match_schema(got, "widget_ask")
    answer = dict(got)
    answer["history"] = visitor.get(f"conversations/{visitor.conversation}/messages").json()
    return answer


def test_each_signed_visitor_reads_only_their_own_rows(
    shop_tenant, my_orders, shop_model, openai_wire
):
    embed = make_datachat_embed(shop_tenant, ORIGIN)
    openai_wire.script(Reply(output=ORDERS_BY_CUSTOMER), Reply(output=ORDERS_BY_CUSTOMER))
    mine, theirs = answer_of(embed, 3), answer_of(embed, 5)
    assert mine["table"]["columns"] == ["customer_id", "orders"]
    assert [row[0] for row in mine["table"]["rows"]] == [3]
    assert [row[0] for row in theirs["table"]["rows"]] == [5]
    assert mine["text"] == {"text": "Your orders, counted."}


def test_the_chart_is_a_server_rendered_svg_image_kept_in_the_history(
    shop_tenant, my_orders, shop_model, openai_wire
):
    embed = make_datachat_embed(shop_tenant, ORIGIN)
    openai_wire.script(Reply(output=ORDERS_BY_CUSTOMER))
    answer = answer_of(embed, 3)
    prefix = "data:image/svg+xml;base64,"
    assert answer["chart"]["image"].startswith(prefix)
    assert base64.b64decode(answer["chart"]["image"][len(prefix) :]).startswith(b"<svg")
    stored = answer["history"]["messages"][-1]
    assert stored["table"] == answer["table"]
    assert stored["chart"]["image"].startswith(prefix)


def test_a_visitor_without_the_claim_is_refused_before_any_model_call(
    shop_tenant, my_orders, shop_model, openai_wire
):
    embed = make_datachat_embed(shop_tenant, ORIGIN, identity_mode="anonymous")
    visitor = Visitor(embed)
    visitor.start()
    assert_refused(visitor.ask(), 403, "datachat_claim_missing")
    assert openai_wire.requests == []
