"""Refuse URLs that carry a NUL character, before any view reads them.

PostgreSQL text cannot hold NUL, so such a path or query value can never name or filter a row:
handed to the database it fails the query (a 500). Every request's path and query string are
checked here once, so no view has to: the answer is a 400 (``invalid_input``), a
NormalizedError under the JSON paths.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.utils.decorators import sync_and_async_middleware

from automate_core.api.errors import error_body, wants_json

MESSAGE = "The URL contains a NUL character, which no name or value here can hold."


def refusal(request: HttpRequest) -> HttpResponse | None:
    """The 400 answer to ``request`` when its path or query string holds a NUL, else None."""
    query = request.GET
    if "\x00" not in request.path and not any(
        "\x00" in key or any("\x00" in value for value in query.getlist(key)) for key in query
    ):
        return None
    if wants_json(request):
        return JsonResponse(error_body("invalid_input", MESSAGE), status=400)
    return HttpResponseBadRequest(MESSAGE)


@sync_and_async_middleware
def refuse_nul_bytes(get_response: Callable[[HttpRequest], Any]) -> Any:
    """The middleware: :func:`refusal` before the rest of the stack."""
    if iscoroutinefunction(get_response):
        async_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = get_response

        async def middleware_async(request: HttpRequest) -> HttpResponse:
            return refusal(request) or await async_response(request)

        return middleware_async

    def middleware(request: HttpRequest) -> HttpResponse:
        return refusal(request) or get_response(request)

    return middleware
