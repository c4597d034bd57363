"""The part every wire server shares: a real HTTP/1.1 server on 127.0.0.1, a queue of scripted
behaviours, the record of what it received, and the ways it can answer (JSON, SSE in chunked
transfer encoding, a connection dropped mid-body).

A request the provider's real API would refuse (missing auth, malformed messages) is answered
with that API's error, so a test fails when the SDK call we build is wrong, not only when the
answer is read wrongly.
"""

from __future__ import annotations

import contextlib
import json
import socket
import sys
import threading
import time
import uuid
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

from automate_llm.testing.behaviours import (
    Behaviour,
    CutStream,
    Embeddings,
    Malformed,
    RateLimited,
    Rejected,
    Reply,
    ServerError,
)


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server received it; ``headers`` keys are lowercase."""

    method: str
    path: str
    headers: dict[str, str]
    #: The request id the server answered with (in its request-id header).
    request_id: str
    raw: bytes
    #: The parsed JSON body (None when there was none or it was not JSON).
    body: Any

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


class WireRefusal(Exception):
    """Raised by a server's request validation: answered as that API's error."""

    def __init__(self, status: int, message: str, kind: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.kind = status, message, kind


class ConnectionDropped(Exception):
    """The handler dropped the connection on purpose (a cut stream or body)."""


class Exchange:
    """The answer being written for one request, in the dialect's wire format."""

    def __init__(self, handler: BaseHTTPRequestHandler, request_id: str, id_header: str) -> None:
        self.handler = handler
        self.request_id = request_id
        self.id_header = id_header
        self.events_sent = 0

    def send_json(self, status: int, body: Any, headers: dict[str, str] | None = None) -> None:
        self.send_bytes(status, json.dumps(body).encode(), headers)

    def send_bytes(
        self, status: int, payload: bytes, headers: dict[str, str] | None = None
    ) -> None:
        self._head(status, {"Content-Length": str(len(payload)), **(headers or {})})
        self.handler.wfile.write(payload)

    def send_partial(self, status: int, payload: bytes) -> None:
        """Announce the whole body, send half of it, then drop the connection."""
        self._head(status, {"Content-Length": str(len(payload))})
        self.handler.wfile.write(payload[: len(payload) // 2])
        self.drop()

    def open_stream(self, headers: dict[str, str] | None = None) -> None:
        self._head(
            200,
            {
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "Transfer-Encoding": "chunked",
                **(headers or {}),
            },
        )

    def event(self, data: str, *, event: str | None = None, cut_after: int | None = None) -> None:
        """Send one SSE event as one HTTP chunk; drop the connection once ``cut_after`` went."""
        if cut_after is not None and self.events_sent >= cut_after:
            self.drop()
        text = (f"event: {event}\n" if event else "") + f"data: {data}\n\n"
        chunk = text.encode()
        self.handler.wfile.write(f"{len(chunk):X}\r\n".encode() + chunk + b"\r\n")
        self.handler.wfile.flush()
        self.events_sent += 1

    def close_stream(self) -> None:
        self.handler.wfile.write(b"0\r\n\r\n")
        self.handler.wfile.flush()

    def drop(self) -> None:
        """Close the TCP connection abruptly, mid-message."""
        self.handler.wfile.flush()
        self.handler.close_connection = True
        with contextlib.suppress(OSError):
            self.handler.connection.shutdown(socket.SHUT_RDWR)
        raise ConnectionDropped

    def _head(self, status: int, headers: dict[str, str]) -> None:
        self.handler.send_response(status)
        self.handler.send_header(self.id_header, self.request_id)
        if "Content-Type" not in headers:
            self.handler.send_header("Content-Type", "application/json")
        for name, value in headers.items():
            self.handler.send_header(name, value)
        self.handler.end_headers()


class _QuietServer(ThreadingHTTPServer):
    """Does not print the resets of clients that hang up on purpose (a stream closed early)."""

    def handle_error(self, request: Any, client_address: Any) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


class WireServer:
    """A provider API on an ephemeral port of 127.0.0.1. Use as a context manager.

    ``script(...)`` queues behaviours, one per request in arrival order; with the queue empty
    a request gets the default (``Reply()``, or ``Embeddings()`` on an embeddings route).
    ``requests`` holds every request received, refused ones included.
    """

    #: The entry-point name of the provider that speaks this API.
    provider_type: ClassVar[str] = ""
    #: The response header that carries the provider's request id.
    request_id_header: ClassVar[str] = "x-request-id"

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self.api_key: str | None = None
        self._queue: deque[Behaviour] = deque()
        self._lock = threading.Lock()
        self._httpd = _QuietServer(("127.0.0.1", 0), self._handler_class())
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def base_url(self) -> str:
        """What the SDK takes as ``base_url`` (OpenAI's includes ``/v1``)."""
        return f"http://127.0.0.1:{self.port}"

    def script(self, *behaviours: Behaviour) -> None:
        with self._lock:
            self._queue.extend(behaviours)

    @property
    def pending(self) -> int:
        """Scripted behaviours no request has used yet."""
        with self._lock:
            return len(self._queue)

    @property
    def last(self) -> RecordedRequest:
        return self.requests[-1]

    def __enter__(self) -> Self:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join(timeout=5)

    # -- dialect hooks ---------------------------------------------------------------------

    def api_key_of(self, request: RecordedRequest) -> str:
        """The API key ``request`` carries (``Authorization: Bearer``, or ``x-api-key``)."""
        auth = request.headers.get("authorization", "")
        bearer = auth.removeprefix("Bearer ") if auth.startswith("Bearer ") else ""
        return bearer or request.headers.get("x-api-key", "")

    def validate(self, request: RecordedRequest) -> None:
        """Raise WireRefusal where the real API would refuse ``request``."""

    def is_embeddings(self, request: RecordedRequest) -> bool:
        return False

    def error_body(self, status: int, message: str, kind: str, request_id: str) -> Any:
        raise NotImplementedError

    def answer(self, exchange: Exchange, request: RecordedRequest, reply: Reply) -> None:
        raise NotImplementedError

    def answer_cut(self, exchange: Exchange, request: RecordedRequest, cut: CutStream) -> None:
        raise NotImplementedError

    def answer_embeddings(
        self, exchange: Exchange, request: RecordedRequest, embeddings: Embeddings
    ) -> None:
        raise NotImplementedError

    def malformed_event(self, exchange: Exchange) -> None:
        raise NotImplementedError

    # -- dispatch ---------------------------------------------------------------------------

    def _next(self, request: RecordedRequest) -> Behaviour:
        with self._lock:
            if self._queue:
                return self._queue.popleft()
        return Embeddings() if self.is_embeddings(request) else Reply()

    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(
            method=handler.command,
            path=handler.path,
            headers={name.lower(): value for name, value in handler.headers.items()},
            request_id=f"req_{uuid.uuid4().hex[:24]}",
            raw=raw,
            body=body,
        )
        with self._lock:
            self.requests.append(request)
        exchange = Exchange(handler, request.request_id, self.request_id_header)
        try:
            self.validate(request)
            self._perform(exchange, request, self._next(request))
        except WireRefusal as refusal:
            self._refuse(exchange, refusal.status, refusal.message, refusal.kind)
        except ConnectionDropped:
            return

    def _perform(self, exchange: Exchange, request: RecordedRequest, behaviour: Behaviour) -> None:
        if isinstance(behaviour, RateLimited):
            headers = {}
            if behaviour.retry_after is not None:
                headers["Retry-After"] = behaviour.retry_after
            if behaviour.retry_after_ms is not None:
                headers["retry-after-ms"] = behaviour.retry_after_ms
            self._refuse(exchange, 429, behaviour.message, "rate_limit_error", headers)
        elif isinstance(behaviour, ServerError):
            headers = {"Retry-After": behaviour.retry_after} if behaviour.retry_after else {}
            self._refuse(exchange, behaviour.status, behaviour.message, "api_error", headers)
        elif isinstance(behaviour, Rejected):
            self._refuse(exchange, behaviour.status, behaviour.message, "invalid_request_error")
        elif isinstance(behaviour, Malformed):
            if request.stream:
                exchange.open_stream()
                if behaviour.body is not None:
                    exchange.event(behaviour.body.decode())
                else:
                    self.malformed_event(exchange)
                exchange.close_stream()
            else:
                body = behaviour.body if behaviour.body is not None else b'{"id": "broken", "ch'
                exchange.send_bytes(200, body)
        elif isinstance(behaviour, CutStream):
            self.answer_cut(exchange, request, behaviour)
        elif isinstance(behaviour, Embeddings):
            self.answer_embeddings(exchange, request, behaviour)
        else:
            if behaviour.delay:
                time.sleep(behaviour.delay)
            self.answer(exchange, request, behaviour)

    def _refuse(
        self,
        exchange: Exchange,
        status: int,
        message: str,
        kind: str,
        headers: dict[str, str] | None = None,
    ) -> None:
        body = self.error_body(status, message, kind, exchange.request_id)
        exchange.send_json(status, body, headers)

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in separate writes: with Nagle on, the body would wait
            # for the client's delayed ACK (40 ms) on a kept-alive connection.
            disable_nagle_algorithm = True

            def do_POST(self) -> None:
                server._handle(self)

            def do_GET(self) -> None:
                server._handle(self)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return Handler


def pieces(text: str, size: int) -> Iterable[str]:
    """``text`` cut into pieces of ``size`` characters (one empty piece for empty text)."""
    size = max(1, size)
    return [text[i : i + size] for i in range(0, len(text), size)] or [""]


def split_in_two(text: str) -> list[str]:
    middle = len(text) // 2
    return [part for part in (text[:middle], text[middle:]) if part]


def vector_for(text: str, dimensions: int) -> list[float]:
    """A deterministic vector for ``text``: equal texts, equal vectors."""
    seed = uuid.uuid5(uuid.NAMESPACE_OID, text).bytes * (dimensions // 16 + 1)
    return [round(byte / 255, 6) for byte in seed[:dimensions]]


def call_ids(reply: Reply, prefix: str = "call_") -> list[str]:
    """The ids of ``reply``'s tool calls: as scripted, else fresh ones."""
    return [call.id or f"{prefix}{uuid.uuid4().hex[:20]}" for call in reply.tool_calls]
