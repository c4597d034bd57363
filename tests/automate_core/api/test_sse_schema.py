"""Streaming operations declare their Server-Sent Events in the OpenAPI schema, each event's
data a component; the streams the apps really send are checked against it in their own tests
(``automate_core.testing.openapi.assert_events_match_schema``)."""

from __future__ import annotations

import pytest

from automate_core.testing.openapi import api_schema, assert_events_match_schema, event_schema

STREAMS = {
    "llm_chat": ("LlmChat", {"text", "tool_call", "done", "error"}),
    "rag_answer": ("RagAnswer", {"text", "done", "error"}),
    "datachat_ask": ("DataChatAsk", {"sql", "rows", "chart", "answer", "done", "error"}),
    "widget_ask": ("WidgetAsk", {"text", "citations", "table", "chart", "done", "error"}),
}

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize("operation_id", sorted(STREAMS))
def test_a_streaming_operation_declares_each_event_as_a_component(operation_id):
    prefix, names = STREAMS[operation_id]
    declared = event_schema(operation_id)
    mapping = declared["discriminator"]["mapping"]
    assert set(mapping) == names
    components = api_schema()["components"]["schemas"]
    for name, ref in mapping.items():
        assert ref.startswith(f"#/components/schemas/{prefix}")
        component = components[ref.rsplit("/", 1)[1]]
        assert component["required"] == ["event", "data"]
        event_name = components[component["properties"]["event"]["$ref"].rsplit("/", 1)[1]]
        assert event_name["enum"] == [name]
    assert sorted(r["$ref"] for r in declared["oneOf"]) == sorted(mapping.values())


def test_an_error_event_carries_a_normalized_error():
    error = api_schema()["components"]["schemas"]["RagAnswerErrorEvent"]
    assert error["properties"]["data"] == {"$ref": "#/components/schemas/NormalizedError"}


def test_an_event_off_its_declared_shape_is_reported():
    with pytest.raises(AssertionError, match="text"):
        assert_events_match_schema([("text", {"text": 3})], "rag_answer")


def test_an_undeclared_event_is_reported():
    with pytest.raises(AssertionError, match="progress"):
        assert_events_match_schema([("progress", {"text": "x"})], "rag_answer")


def test_a_nullable_field_accepts_null():
    assert_events_match_schema([("done", {"session": None, "message": None})], "datachat_ask")
