"""Check what a stream really sends against what the OpenAPI schema declares for it."""

from __future__ import annotations

from collections.abc import Iterable
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from automate_core.api.sse import CONTENT_TYPE


@cache
def api_schema() -> dict[str, Any]:
    """The public OpenAPI schema of the API, as ``/api/schema/`` serves it (built once)."""
    from drf_spectacular.generators import SchemaGenerator

    return dict(SchemaGenerator().get_schema(request=None, public=True))


def operation(operation_id: str) -> dict[str, Any]:
    """The operation with ``operation_id``."""
    for item in api_schema()["paths"].values():
        for candidate in item.values():
            if isinstance(candidate, dict) and candidate.get("operationId") == operation_id:
                return dict(candidate)
    raise LookupError(f"No operation {operation_id!r} in the API schema")


def event_schema(operation_id: str) -> dict[str, Any]:
    """The declared ``text/event-stream`` schema of the operation's 200 answer."""
    return dict(operation(operation_id)["responses"]["200"]["content"][CONTENT_TYPE]["schema"])


def assert_events_match_schema(events: Iterable[tuple[str, Any]], operation_id: str) -> None:
    """Each ``(event, data)`` pair of a stream, as the object ``{"event", "data"}``, is valid
    against the operation's declared event schema (OpenAPI 3.0's ``nullable`` honoured)."""
    declared = {
        **_json_schema(event_schema(operation_id)),
        "components": _json_schema(api_schema()["components"]),
    }
    validator = Draft202012Validator(declared)
    failures = [
        f"{name}: {error.message}"
        for name, data in events
        for error in validator.iter_errors({"event": name, "data": data})
    ]
    assert not failures, failures


def _json_schema(node: Any) -> Any:
    """An OpenAPI 3.0 schema as JSON Schema: ``nullable`` becomes ``null`` allowed."""
    if isinstance(node, list):
        return [_json_schema(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {
        key: _json_schema(value)
        for key, value in node.items()
        if not (key == "nullable" and isinstance(value, bool))
    }
    if node.get("nullable") is True:
        return {"anyOf": [converted, {"type": "null"}]}
    return converted
