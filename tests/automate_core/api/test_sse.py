"""The shared Server-Sent Events response every streaming endpoint uses."""

from __future__ import annotations

import asyncio

import pytest
from django.test import RequestFactory

from automate_core.api.sse import Events, EventStream, encode_event

# Closing a response sends request_finished, which checks the thread's database connection
# (left open by an earlier test): the database must be reachable.
pytestmark = pytest.mark.django_db


def test_an_event_is_its_name_and_one_line_of_json() -> None:
    assert encode_event("text", {"text": "a\nb"}) == b'event: text\ndata: {"text":"a\\nb"}\n\n'


def _counting(closed: list[str]) -> Events:
    try:
        yield encode_event("text", {"n": 1})
        yield encode_event("text", {"n": 2})
    finally:
        closed.append("closed")


def test_closing_the_response_closes_the_stream_it_serves() -> None:
    closed: list[str] = []
    response = EventStream(_counting(closed), asynchronous=False)
    assert next(iter(response)) == encode_event("text", {"n": 1})
    response.close()
    assert closed == ["closed"]
    assert response["Content-Type"] == "text/event-stream"
    assert response["Cache-Control"] == "no-cache"


def test_an_asynchronous_stream_yields_every_event_then_closes() -> None:
    closed: list[str] = []
    response = EventStream(_counting(closed), asynchronous=True)

    async def read() -> list[bytes]:
        return [part async for part in response]

    assert asyncio.run(read()) == [encode_event("text", {"n": 1}), encode_event("text", {"n": 2})]
    assert closed == ["closed"]


def test_a_wsgi_request_gets_a_synchronous_stream() -> None:
    response = EventStream.for_request(_counting([]), RequestFactory().get("/"))
    assert not response.is_async


def _failing_first(closed: list[str]) -> Events:
    try:
        raise LookupError("no model")
        yield b""  # a generator that fails before its first event
    finally:
        closed.append("closed")


def test_a_failure_before_the_first_event_propagates_and_closes_the_events() -> None:
    closed: list[str] = []
    with pytest.raises(LookupError):
        EventStream.started(_failing_first(closed), RequestFactory().get("/"))
    assert closed == ["closed"]


def test_a_started_stream_serves_its_first_event_then_the_rest() -> None:
    response = EventStream.started(_counting([]), RequestFactory().get("/"))
    assert list(response) == [encode_event("text", {"n": 1}), encode_event("text", {"n": 2})]


def test_closing_a_started_stream_after_its_first_event_closes_the_events() -> None:
    closed: list[str] = []
    response = EventStream.started(_counting(closed), RequestFactory().get("/"))
    assert next(iter(response)) == encode_event("text", {"n": 1})
    response.close()
    assert closed == ["closed"]
