"""OpenAPI schema tweaks: canonical paths, every operation's errors declared with the
NormalizedError shape, and Server-Sent Events answers declared with each event's shape, so
clients (and schema fuzzers) know what each answer and failure looks like."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from drf_spectacular.plumbing import ResolvedComponent
from rest_framework import serializers
from rest_framework.permissions import AllowAny

from automate_core.api.sse import CONTENT_TYPE, StreamEvents

ERROR_DESCRIPTIONS = {
    "400": "Invalid input (`validation_error`, `invalid_input`, ...).",
    "401": "Missing or invalid credentials (`not_authenticated`, `authentication_failed`).",
    "403": "The key or user may not do this (`permission_denied`).",
    "404": "No such object in your tenant (`not_found`).",
    "429": "Rate limited (`throttled`); see Retry-After.",
    "500": "Unexpected error (`internal_error`); quote the trace_id to support.",
}


class NormalizedErrorSerializer(serializers.Serializer):
    """Every error the API returns, whatever its status."""

    code = serializers.CharField(help_text="Stable machine-readable code, e.g. `not_found`.")
    message = serializers.CharField(help_text="What went wrong, for people.")
    details = serializers.JSONField(help_text="Structured details (fields, limits, ids).")
    trace_id = serializers.CharField(help_text="The request's trace id.")


STREAM_DESCRIPTION = (
    "Server-Sent Events (`text/event-stream`). Each event is `event: <name>` and `data: <one "
    "line of JSON>`, then a blank line; it is described here as the object "
    '`{"event": <name>, "data": <JSON>}`. The last event is the stream\'s result, or `error` '
    "(a NormalizedError) when it broke after it started."
)


def _camel(name: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in name.split("_"))


class NormalizedErrorSchema(AutoSchema):
    """Adds the errors an operation can answer with, each as a NormalizedError; responses a
    view declares without a body (``OpenApiResponse(description=...)``) get that body too.
    A :class:`StreamEvents` answer becomes one component per event, joined by ``oneOf``."""

    def _get_response_for_code(
        self,
        serializer: Any,
        status_code: str,
        media_types: Any = None,
        direction: Any = "response",
    ) -> dict[str, Any]:
        if not isinstance(serializer, StreamEvents):
            return dict(
                super()._get_response_for_code(serializer, status_code, media_types, direction)
            )
        refs = self._event_components(serializer, direction)
        schema = {
            "description": STREAM_DESCRIPTION,
            "oneOf": list(refs.values()),
            "discriminator": {
                "propertyName": "event",
                "mapping": {name: ref["$ref"] for name, ref in refs.items()},
            },
        }
        return {
            "description": "",
            "content": {media: {"schema": schema} for media in media_types or [CONTENT_TYPE]},
        }

    def _event_components(self, stream: StreamEvents, direction: Any) -> dict[str, Any]:
        """``{event name: $ref}``, registering ``<stream><Event>Event`` for each event (the
        event's name is a one-value enum component of its own, shared by every stream)."""
        refs = {}
        for event, data in {**stream.events, "error": NormalizedErrorSerializer}.items():
            if isinstance(data, type):
                shape = self.resolve_serializer(data, direction).ref
            else:
                shape = dict(data)
            name = self._component(f"{_camel(event)}EventName", {"type": "string", "enum": [event]})
            refs[event] = self._component(
                f"{stream.name}{_camel(event)}Event",
                {
                    "type": "object",
                    "properties": {"event": name, "data": shape},
                    "required": ["event", "data"],
                },
            )
        return refs

    def _component(self, name: str, schema: dict[str, Any]) -> dict[str, str]:
        component = ResolvedComponent(
            name=name, type=ResolvedComponent.SCHEMA, schema=schema, object=name
        )
        self.registry.register_on_missing(component)
        return dict(component.ref)

    def _get_response_bodies(self, direction: Any = "response") -> dict[str, Any]:
        responses: dict[str, Any] = super()._get_response_bodies(direction)
        if direction != "response":
            return responses
        error = self.resolve_serializer(NormalizedErrorSerializer, direction)
        body = {"application/json": {"schema": error.ref}}
        for status in self._error_statuses():
            responses.setdefault(status, {"description": ERROR_DESCRIPTIONS[status]})
        for status, response in responses.items():
            if status[0] in "45" and "content" not in response:
                response["content"] = dict(body)
        return responses

    def _error_statuses(self) -> list[str]:
        statuses = ["400"]
        permissions = self.view.get_permissions()
        if not all(isinstance(p, AllowAny) for p in permissions):
            statuses += ["401", "403"]
        if "{" in self.path:
            statuses.append("404")
        if getattr(self.view, "throttle_classes", None):
            statuses.append("429")
        return [*statuses, "500"]


def strip_optional_trailing_slash(
    endpoints: list[tuple[Any, ...]], **_: Any
) -> list[tuple[Any, ...]]:
    """Routes accept an optional trailing slash; document the canonical form without it."""
    return [(path.rstrip("/") or "/", *rest) for path, *rest in endpoints]
