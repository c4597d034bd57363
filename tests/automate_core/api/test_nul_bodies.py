"""A request body holding a NUL character is refused when parsed (PostgreSQL can store NUL in
neither text nor jsonb), whatever the field: a 400, never a failed query."""

from __future__ import annotations

import json

import pytest

from automate_core.api.parsers import holds_nul
from automate_core.events.models import Event

pytestmark = pytest.mark.django_db


def post_json(client, body):
    return client.post("/api/v1/events", json.dumps(body), content_type="application/json")


def test_a_nul_in_a_json_value_is_a_parse_error(api_client):
    response = post_json(api_client, {"type": "order.paid", "payload": {"note": "a\x00b"}})
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")
    assert not Event.objects.exists()


def test_a_nul_in_a_json_key_is_a_parse_error(api_client):
    response = post_json(api_client, {"type": "order.paid", "payload": {"a\x00": 1}})
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_a_nul_in_a_form_field_is_a_parse_error(api_client):
    response = api_client.post("/api/v1/events", {"type": "order\x00paid"})
    assert (response.status_code, response.json()["code"]) == (400, "parse_error")


def test_a_body_without_nul_is_accepted(api_client):
    response = post_json(api_client, {"type": "order.paid", "payload": {"note": "\\u0000"}})
    assert response.status_code == 202


def test_a_nul_is_found_at_any_depth():
    deep: list = ["a\x00"]
    for _ in range(10_000):
        deep = [deep]
    assert holds_nul(deep) and not holds_nul({"a": [1, 2.5, None, {"b": "c"}]})
