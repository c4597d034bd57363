"""OpenAPI schema tweaks: canonical paths, and every operation's errors declared with the
NormalizedError shape, so clients (and schema fuzzers) know what each failure looks like."""

from __future__ import annotations

from typing import Any

from drf_spectacular.openapi import AutoSchema
from rest_framework import serializers
from rest_framework.permissions import AllowAny

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


class NormalizedErrorSchema(AutoSchema):
    """Adds the errors an operation can answer with, each as a NormalizedError; responses a
    view declares without a body (``OpenApiResponse(description=...)``) get that body too."""

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
