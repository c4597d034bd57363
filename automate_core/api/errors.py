"""Every API error is a NormalizedError: ``{code, message, details, trace_id}``.

Views raise DRF or domain exceptions (:class:`automate_core.errors.AutomateError`); this handler
is the one place that turns them into JSON. Unexpected exceptions become a 500 with a generic
message; the traceback goes to the log under the same trace_id, never to the client.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from rest_framework import exceptions, status
from rest_framework.response import Response

from automate_core.base import InvalidTransition
from automate_core.errors import AutomateError
from automate_core.tracing import current_trace_id, new_trace_id

logger = logging.getLogger("automate.api")

_CODES: list[tuple[type[exceptions.APIException], str]] = [
    (exceptions.ValidationError, "validation_error"),
    (exceptions.ParseError, "parse_error"),
    (exceptions.NotAuthenticated, "not_authenticated"),
    (exceptions.AuthenticationFailed, "authentication_failed"),
    (exceptions.PermissionDenied, "permission_denied"),
    (exceptions.NotFound, "not_found"),
    (exceptions.MethodNotAllowed, "method_not_allowed"),
    (exceptions.NotAcceptable, "not_acceptable"),
    (exceptions.UnsupportedMediaType, "unsupported_media_type"),
    (exceptions.Throttled, "throttled"),
]


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "details": details if details is not None else {},
        "trace_id": current_trace_id() or new_trace_id(),
    }


def normalized_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()
    elif isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(
            exc.message_dict if hasattr(exc, "error_dict") else exc.messages
        )

    if isinstance(exc, AutomateError):
        return Response(error_body(exc.code, exc.message, exc.details), status=exc.status_code)
    if isinstance(exc, InvalidTransition):
        body = error_body("invalid_transition", str(exc), {"from": exc.current, "to": exc.target})
        return Response(body, status=status.HTTP_409_CONFLICT)
    if isinstance(exc, exceptions.APIException):
        return _api_exception_response(exc)

    view = context.get("view")
    logger.exception("Unhandled error in %s", type(view).__name__ if view else "API view")
    body = error_body(
        "internal_error", "An unexpected error occurred. Quote the trace_id to support."
    )
    return Response(body, status=status.HTTP_500_INTERNAL_SERVER_ERROR)


def _api_exception_response(exc: exceptions.APIException) -> Response:
    code = next((c for cls, c in _CODES if isinstance(exc, cls)), None) or str(exc.default_code)
    headers: dict[str, str] = {}
    details: Any = {}
    if isinstance(exc, exceptions.ValidationError):
        message = "The request is invalid; see details for each field."
        details = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
    else:
        message = str(exc.detail)
    wait = getattr(exc, "wait", None)
    if isinstance(exc, exceptions.Throttled) and wait is not None:
        seconds = math.ceil(wait)
        headers["Retry-After"] = str(seconds)
        details = {"retry_after_seconds": seconds}
    # DRF's APIView already chose 401 vs 403 and put the challenge on the exception.
    auth_header = getattr(exc, "auth_header", None)
    if auth_header:
        headers["WWW-Authenticate"] = auth_header
    return Response(error_body(code, message, details), status=exc.status_code, headers=headers)


#: Paths whose every answer, errors included, is JSON: the API and the widget's endpoints.
JSON_PATHS = ("/api/", "/widgets/v1/")


def wants_json(request: HttpRequest) -> bool:
    return request.path.startswith(JSON_PATHS)


def json_404_or_html(request: HttpRequest, exception: Exception) -> HttpResponse:
    """URL-level 404: NormalizedError under the JSON paths, Django's page elsewhere."""
    if wants_json(request):
        return JsonResponse(error_body("not_found", "No such endpoint."), status=404)
    return defaults.page_not_found(request, exception)


def json_500_or_html(request: HttpRequest) -> HttpResponse:
    """Errors that escape the API views (middleware, URL resolution) still answer in shape."""
    if wants_json(request):
        body = error_body(
            "internal_error", "An unexpected error occurred. Quote the trace_id to support."
        )
        return JsonResponse(body, status=500)
    return defaults.server_error(request)
