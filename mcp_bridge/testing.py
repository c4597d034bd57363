"""A real MCP server for tests and benchmarks, built with the SDK's ``MCPServer`` and served by
uvicorn on a loopback port (streamable HTTP, or legacy SSE), that a test changes between
syncs: add, redescribe or remove tools while the server runs. Like a well-behaved server, it
announces each change to listening sessions (``subscriptions/listen``).

Loopback is refused by the egress policy by default: allow it in the test with
:func:`automate_core.testing.fake_network.configure_egress` (``EGRESS_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged

from mcp_bridge.pool import pool


class _PagedMCPServer(MCPServer):
    """``MCPServer`` whose ``tools/list`` answers ``page_size`` tools a page (cursor = offset),
    so tests see a paginated listing; None lists everything at once, as the SDK does."""

    page_size: int | None = None
    #: ``tools/list`` requests answered (every page counts).
    listings: int = 0

    async def _handle_list_tools(
        self, ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        self.listings += 1
        tools = await self.list_tools()
        if self.page_size is None:
            return mcp_types.ListToolsResult(tools=tools)
        start = int(params.cursor or 0) if params is not None else 0
        end = start + self.page_size
        return mcp_types.ListToolsResult(
            tools=tools[start:end], next_cursor=str(end) if end < len(tools) else None
        )


@dataclass
class ReceivedCall:
    tool: str
    arguments: dict[str, Any]
    meta: dict[str, Any]
    headers: dict[str, str]


@dataclass
class ToolServer:
    """An SDK server whose tools the test controls; ``calls`` records what each tool got."""

    name: str = "test-server"
    #: Tools per ``tools/list`` page (None: one page).
    page_size: int | None = None
    server: MCPServer = field(init=False)
    calls: list[ReceivedCall] = field(default_factory=list)
    url: str = ""
    _bus: InMemorySubscriptionBus = field(default_factory=InMemorySubscriptionBus, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        self.server = _PagedMCPServer(self.name, subscriptions=self._bus)
        self.server.page_size = self.page_size

    def add(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        annotations: Any = None,
    ) -> None:
        """Serve ``fn`` as a tool; its signature becomes the input schema. Each call is
        recorded (arguments, ``_meta`` and HTTP headers) before ``fn`` runs."""
        tool_name = name or fn.__name__
        calls = self.calls

        async def recorded(ctx: Context, **arguments: Any) -> Any:
            meta = ctx.request_context.meta or {}
            calls.append(
                ReceivedCall(
                    tool=tool_name,
                    arguments=dict(arguments),
                    meta=dict(meta) if isinstance(meta, dict) else meta.model_dump(),
                    headers=dict(ctx.headers or {}),
                )
            )
            return fn(**arguments)

        self.server.add_tool(
            _with_signature_of(fn, recorded),
            name=tool_name,
            description=description if description is not None else (fn.__doc__ or ""),
            annotations=annotations,
        )
        self.announce()

    def remove(self, name: str) -> None:
        self.server.remove_tool(name)
        self.announce()

    def replace(self, fn: Callable[..., Any], **options: Any) -> None:
        """Serve a new definition under the same name (a description or schema change)."""
        self.remove(options.get("name") or fn.__name__)
        self.add(fn, **options)

    def announce(self, timeout: float = 5.0) -> None:
        """Publish ``tools/list_changed`` to listening sessions, and wait until each idle
        pooled session to this server has heard it (so a test's next call sees the change)."""
        loop = self._loop
        if loop is None:
            return
        waiting = [(watch, watch.generation) for watch in pool.watches(self.url) if watch.told]
        asyncio.run_coroutine_threadsafe(self._bus.publish(ToolsListChanged()), loop).result(
            timeout
        )
        deadline = time.monotonic() + timeout
        while any(watch.generation == seen and watch.told for watch, seen in waiting):
            if time.monotonic() > deadline:
                raise TimeoutError("a pooled session did not hear tools/list_changed")
            time.sleep(0.002)

    @contextmanager
    def serving(self, *, transport: str = "streamable_http") -> Iterator[str]:
        """Serve until the block ends; yields the endpoint URL (``.../mcp`` or ``.../sse``)."""
        if transport == "sse":
            inner, path = self.server.sse_app(), "/sse"
        else:
            inner, path = self.server.streamable_http_app(), "/mcp"

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                self._loop = asyncio.get_running_loop()  # where announce() publishes
            await inner(scope, receive, send)

        with serve_with_lifespan(app) as base:
            self.url = f"{base}{path}"
            try:
                yield self.url
            finally:
                self._loop = None
                pool.close_all()  # pooled sessions would hold the server's shutdown open


@contextmanager
def serve_with_lifespan(app: Any) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a loopback port, lifespan on (the SDK's apps
    start their session manager there), until the block ends; yields the base URL."""
    import uvicorn

    listener = socket.socket()
    # Accepted connections inherit it: small SSE writes are not held back by Nagle's
    # algorithm waiting on the client's delayed ACK (40 ms a request on loopback).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, lifespan="on", log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [listener]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError("the ASGI test server did not start")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        listener.close()


def _with_signature_of(fn: Callable[..., Any], wrapper: Callable[..., Any]) -> Callable[..., Any]:
    """``wrapper`` presenting ``fn``'s parameters (plus ``ctx``) so the SDK derives the
    input schema from ``fn`` while ``wrapper`` records the call."""
    import inspect

    signature = inspect.signature(fn)
    parameters = [
        *signature.parameters.values(),
        inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context),
    ]

    async def tool(ctx: Context, **arguments: Any) -> Any:
        return await wrapper(ctx, **arguments)

    tool.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
    tool.__annotations__ = {**fn.__annotations__, "ctx": Context}
    tool.__name__ = fn.__name__
    tool.__doc__ = fn.__doc__
    return tool
