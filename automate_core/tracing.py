"""Trace ids: one id follows a request through events, executions, steps and audit rows.

The middleware accepts a W3C ``traceparent`` or an ``X-Trace-Id`` header, otherwise makes a new
id; it is returned in the ``X-Trace-Id`` response header and put on every log record.
"""

from __future__ import annotations

import contextvars
import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import HttpRequest, HttpResponse

_trace_id: contextvars.ContextVar[str | None] = contextvars.ContextVar("trace_id", default=None)

_TRACEPARENT = re.compile(r"^[0-9a-f]{2}-([0-9a-f]{32})-[0-9a-f]{16}-[0-9a-f]{2}$")
_TRACE_ID = re.compile(r"^[A-Za-z0-9_.:-]{8,64}$")
TRACE_HEADER = "X-Trace-Id"


def new_trace_id() -> str:
    return uuid.uuid4().hex


def current_trace_id() -> str | None:
    return _trace_id.get()


@contextmanager
def trace(trace_id: str | None = None) -> Iterator[str]:
    """Run a block under ``trace_id`` (a new one if None); restores the previous id after."""
    value = trace_id or new_trace_id()
    token = _trace_id.set(value)
    try:
        yield value
    finally:
        _trace_id.reset(token)


def trace_id_from_headers(headers: Any) -> str:
    """The incoming trace id if well-formed, else a new one. Malformed input is never echoed."""
    match = _TRACEPARENT.match(headers.get("traceparent", "").strip().lower())
    if match and match.group(1) != "0" * 32:
        return match.group(1)
    candidate = headers.get(TRACE_HEADER, "").strip()
    if _TRACE_ID.match(candidate):
        return candidate
    return new_trace_id()


class TraceIdMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        if iscoroutinefunction(get_response):
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if iscoroutinefunction(self):
            return self._acall(request)
        with trace(trace_id_from_headers(request.headers)) as trace_id:
            request.trace_id = trace_id  # type: ignore[attr-defined]
            response = self.get_response(request)
        response[TRACE_HEADER] = trace_id
        return response

    async def _acall(self, request: HttpRequest) -> HttpResponse:
        get_response: Callable[[HttpRequest], Awaitable[HttpResponse]] = self.get_response
        with trace(trace_id_from_headers(request.headers)) as trace_id:
            request.trace_id = trace_id  # type: ignore[attr-defined]
            response = await get_response(request)
        response[TRACE_HEADER] = trace_id
        return response


def install_log_record_factory() -> None:
    """Give every log record a ``trace_id`` ('-' outside a trace), whatever handler sees it."""
    previous = logging.getLogRecordFactory()
    if getattr(previous, "adds_trace_id", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        record.trace_id = current_trace_id() or "-"
        return record

    factory.adds_trace_id = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)


class TraceIdLogFilter(logging.Filter):
    """Puts the request's trace id on records logged after the request's trace ended.

    Django logs a request's 4xx/5xx (``django.request``, ``django.server``) once the middleware
    chain has returned, outside :class:`TraceIdMiddleware`'s trace; those records carry the
    request, which carries its trace id. Attach it to handlers, before any formatting filter.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        request = getattr(record, "request", None)
        trace_id = getattr(request, "trace_id", None)
        if trace_id and getattr(record, "trace_id", "-") == "-":
            record.trace_id = trace_id
        elif not hasattr(record, "trace_id"):
            record.trace_id = current_trace_id() or "-"
        return True
