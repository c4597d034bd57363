"""Every operation in the OpenAPI schema declares its errors with the NormalizedError shape."""

from __future__ import annotations

from typing import Any

import pytest

METHODS = ("get", "post", "put", "patch", "delete")
ERROR_REF = "#/components/schemas/NormalizedError"


@pytest.fixture(scope="module")
def schema(django_db_blocker) -> dict[str, Any]:
    from drf_spectacular.generators import SchemaGenerator

    with django_db_blocker.unblock():
        return SchemaGenerator().get_schema(request=None, public=True)


def operations(schema: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (path, method, op)
        for path, item in schema["paths"].items()
        for method, op in item.items()
        if method in METHODS
    ]


def test_every_error_response_has_the_normalized_error_body(schema):
    undeclared = [
        (path, method, status)
        for path, method, op in operations(schema)
        for status, response in op["responses"].items()
        if status[0] in "45"
        and response.get("content", {}).get("application/json", {}).get("schema", {}).get("$ref")
        != ERROR_REF
    ]
    assert undeclared == []


def test_every_operation_declares_invalid_input_and_internal_error(schema):
    missing = [
        (path, method)
        for path, method, op in operations(schema)
        if not {"400", "500"} <= set(op["responses"])
    ]
    assert missing == []


def test_an_operation_on_one_object_declares_not_found(schema):
    op = schema["paths"]["/api/v1/executions/{id}"]["get"]
    assert {"401", "403", "404"} <= set(op["responses"])


def test_a_throttled_operation_declares_rate_limiting(schema):
    assert "429" in schema["paths"]["/api/v1/llm/chat"]["post"]["responses"]


def test_the_error_component_names_its_four_fields(schema):
    error = schema["components"]["schemas"]["NormalizedError"]
    assert set(error["required"]) == {"code", "message", "details", "trace_id"}
