"""Test doubles for the network under the egress policy: a DNS zone answering like
``socket.getaddrinfo`` (patch it in to test name-based rules and DNS rebinding), real HTTP(S)
servers on loopback addresses that record what reached them, and :func:`configure_egress`."""

from __future__ import annotations

import socket
import ssl
import threading
from collections import deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

#: example.com's public address: what a name outside the zone answers, so that a payload is
#: refused for its own reason and never merely because the name did not resolve.
PUBLIC_ADDRESS = "93.184.215.14"


class FakeResolver:
    """A DNS zone in a dict: ``{name: [addresses]}``; ``None`` means NXDOMAIN.

    ``rebind(name, first, then, ...)`` queues one answer per lookup, to emulate DNS rebinding.
    Every lookup is recorded in ``lookups``.
    """

    def __init__(self, zone: dict[str, list[str] | None] | None = None) -> None:
        self.zone = dict(zone or {})
        self.queued: dict[str, deque[list[str]]] = {}
        self.lookups: list[str] = []

    def rebind(self, name: str, *answers: list[str]) -> None:
        self.queued[name] = deque(answers)

    def __call__(
        self, host: str, port: int, family: int = 0, type: int = 0, *args: Any
    ) -> list[tuple[Any, ...]]:
        self.lookups.append(host)
        if self.queued.get(host):
            answer: list[str] | None = self.queued[host].popleft()
        else:
            answer = self.zone.get(host, [PUBLIC_ADDRESS])
        if answer is None:
            raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")
        return [
            (
                socket.AF_INET6 if ":" in address else socket.AF_INET,
                socket.SOCK_STREAM,
                socket.IPPROTO_TCP,
                "",
                (address, port, 0, 0) if ":" in address else (address, port),
            )
            for address in answer
        ]


@dataclass
class SeenRequest:
    method: str
    path: str
    headers: dict[str, str]


@dataclass
class Route:
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b"ok"


class LoopbackServer:
    """A real HTTP (or HTTPS, given ``ssl_context``) server on a loopback address.

    Answers ``routes[path]`` (200 "ok" by default) and records every request in ``seen`` and
    every TLS SNI name in ``sni_names``. Use as a context manager.
    """

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        routes: dict[str, Route] | None = None,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.routes = routes or {}
        self.seen: list[SeenRequest] = []
        self.sni_names: list[str | None] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                server.seen.append(SeenRequest("GET", self.path, dict(self.headers.items())))
                route = server.routes.get(self.path, Route())
                self.send_response(route.status)
                for name, value in route.headers.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(route.body)))
                self.end_headers()
                self.wfile.write(route.body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host, port), Handler)
        self.httpd.daemon_threads = True
        if ssl_context is not None:
            ssl_context.sni_callback = self._record_sni
            self.httpd.socket = ssl_context.wrap_socket(self.httpd.socket, server_side=True)
        self.host, self.port = self.httpd.server_address[:2]
        self._thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def _record_sni(self, sslobj: Any, name: str | None, context: ssl.SSLContext) -> None:
        self.sni_names.append(name)

    def __enter__(self) -> LoopbackServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self._thread.join(timeout=5)


def configure_egress(settings: Any, **values: object) -> None:
    """Merge egress keys into ``AUTOMATE`` through pytest-django's ``settings`` fixture."""
    settings.AUTOMATE = {**(getattr(settings, "AUTOMATE", None) or {}), **values}
