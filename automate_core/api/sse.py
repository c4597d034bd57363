"""Server-Sent Events for every streaming endpoint: framing, the streaming response and the
content negotiation that keeps errors JSON.

A stream is a generator of encoded events (:data:`Events`). :class:`EventStream` serves it
under WSGI as it is and under ASGI as an asynchronous iterator that pulls each event in the
request's sync thread, so no worker thread is held between events. Closing the response (the
server does when the client is gone, or when the stream ended) closes the generator, so its
``finally`` blocks release what the stream held (a provider connection, a budget hold).

A view that answers JSON or a stream uses :class:`JSONWhateverAccepted`, serves the stream with
:meth:`EventStream.started` (errors before the first event stay NormalizedError JSON) and
declares it with :class:`StreamEvents` (each event's ``data`` shape, in the OpenAPI schema).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Generator, Mapping
from dataclasses import dataclass, field
from typing import Any

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIRequest
from django.http import HttpRequest, StreamingHttpResponse
from rest_framework.negotiation import BaseContentNegotiation, DefaultContentNegotiation
from rest_framework.request import Request
from rest_framework.serializers import Serializer

#: The encoded events of one stream; closing it ends the stream's work.
Events = Generator[bytes, None, None]

CONTENT_TYPE = "text/event-stream"


def encode_event(event: str, data: Any) -> bytes:
    """One Server-Sent Event; ``data`` is JSON on one line."""
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


class EventStream(StreamingHttpResponse):
    """The ``text/event-stream`` response of ``events``; closing it closes ``events``."""

    @classmethod
    def for_request(cls, events: Events, request: Request | HttpRequest) -> EventStream:
        """``events`` served the way ``request``'s server wants it (asynchronous under ASGI)."""
        django_request = getattr(request, "_request", request)
        return cls(events, asynchronous=isinstance(django_request, ASGIRequest))

    @classmethod
    def started(cls, events: Events, request: Request | HttpRequest) -> EventStream:
        """``events`` for ``request`` once their first event is ready. Whatever fails before
        it (no model, a budget, a refused request) propagates from here, so the client gets an
        ordinary NormalizedError answer with its status, never a stream that opens with an
        error; ``events`` is closed by then (its ``finally`` blocks ran)."""
        try:
            head = next(events)
        except StopIteration:
            return cls.for_request(events, request)
        return cls.for_request(_resumed(head, events), request)

    def __init__(self, events: Events, *, asynchronous: bool) -> None:
        self._events = events
        content = _pulled_in_threads(events) if asynchronous else events
        super().__init__(content, content_type=CONTENT_TYPE)
        self["Cache-Control"] = "no-cache"
        self["X-Accel-Buffering"] = "no"  # proxies must pass each event on at once

    def close(self) -> None:
        try:
            self._events.close()
        finally:
            super().close()


def _resumed(head: bytes, events: Events) -> Events:
    """``head``, then the rest of ``events``; closing it closes ``events``."""
    try:
        yield head
        yield from events
    finally:
        events.close()


async def _pulled_in_threads(events: Events) -> AsyncIterator[bytes]:
    """``events`` for an ASGI server: each step in the request's sync thread, none held
    between steps. A cancelled send (the client disconnected) closes ``events``."""

    def step() -> bytes | None:
        return next(events, None)

    pull = sync_to_async(step, thread_sensitive=True)
    try:
        while (part := await pull()) is not None:
            yield part
    finally:
        await sync_to_async(events.close, thread_sensitive=True)()


class JSONWhateverAccepted(BaseContentNegotiation):
    """JSON answers and errors are JSON whatever ``Accept`` says: an EventSource client sends
    ``Accept: text/event-stream`` and must still read an error as a NormalizedError."""

    def select_parser(self, request: Any, parsers: Any) -> Any:
        return DefaultContentNegotiation().select_parser(request, parsers)

    def select_renderer(
        self, request: Any, renderers: Any, format_suffix: str | None = None
    ) -> tuple[Any, str]:
        json_renderer = next(r for r in renderers if r.media_type == "application/json")
        return json_renderer, json_renderer.media_type


#: The ``data`` of one event: a serializer (its component) or an inline JSON schema.
EventData = type[Serializer] | Mapping[str, Any]

#: ``{"text": "..."}``: a piece of an answer.
TEXT_PIECE: Mapping[str, Any] = {
    "type": "object",
    "properties": {"text": {"type": "string"}},
    "required": ["text"],
}


@dataclass(frozen=True, eq=False)
class StreamEvents:
    """The events one stream sends, by name, with the shape of each one's ``data``, for the
    OpenAPI schema (``automate_core.api.schema`` turns it into components named
    ``<name><Event>Event``). Every stream may also end with an ``error`` event whose data is a
    NormalizedError; it is declared for each stream without being listed here."""

    name: str
    events: Mapping[str, EventData] = field(default_factory=dict)

    def responses(self, json: Any = None) -> dict[tuple[int, str], Any]:
        """The 200 answers of an operation that streams these events, and answers ``json``
        (a serializer) otherwise: ``extend_schema(responses={**events.responses(...), ...})``."""
        answers: dict[tuple[int, str], Any] = {(200, CONTENT_TYPE): self}
        if json is not None:
            answers = {(200, "application/json"): json, **answers}
        return answers
