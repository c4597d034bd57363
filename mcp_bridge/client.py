"""Sessions with MCP servers through the official SDK, never the protocol by hand.

:func:`connection_for` turns a server row into a :class:`Connection` (sync code: secrets
resolved, stdio command looked up, URL checked by the egress policy); :func:`open_session`
opens an SDK :class:`mcp.Client` over it:

* ``streamable_http``: the current transport. A server that answers the first POST with an
  error status is retried once over the legacy SSE transport at the same URL, as the spec's
  backwards-compatibility section describes.
* ``sse``: the legacy transport only.
* ``stdio``: a subprocess, only from ``AUTOMATE_MCP["STDIO_COMMANDS"]``: the row names a key of
  that setting, so no tenant or API caller ever chooses what runs.

Every HTTP request (redirect hops included) goes through the egress policy's pinned httpx2
client for the server's tenant: a URL on a private, loopback, link-local or metadata address is
refused unless ``AUTOMATE["EGRESS_ALLOW_PRIVATE"]`` allows it, and the tenant's allowlist
applies. :func:`run` runs such async work from sync code (steps, jobs, views).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import anyio
import anyio.lowlevel
import anyio.to_thread
import httpx2
import mcp_types
from django.core.exceptions import ValidationError
from mcp import Client, MCPError, StdioServerParameters
from mcp.client.sse import sse_client
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp.client.subscriptions import ListenNotSupportedError, SubscriptionLost
from mcp.shared.subscriptions import ToolsListChanged

from automate_core.errors import AutomateError
from automate_core.governance.egress import async_httpx2_client, check_url
from mcp_bridge.auth import auth_headers
from mcp_bridge.conf import mcp_settings
from mcp_bridge.errors import MCPConnectionError, StdioCommandNotAllowed, ToolCallTimeout

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant
    from mcp_bridge.models import MCPServer

T = TypeVar("T")

#: Definition fields kept from ``tools/list`` (MCP wire names): the pinned ones and the title.
DEFINITION_FIELDS = ("name", "title", "description", "inputSchema", "outputSchema", "annotations")

# Seconds a legacy SSE stream may stay silent between events.
_SSE_READ_TIMEOUT = 300.0


@dataclass(eq=False)
class ToolWatch:
    """The tools one session last listed (name -> (definition, pin)), kept only while the
    session is told of changes: the server declared ``tools.listChanged`` and, on 2026-07-28
    servers, honoured our ``subscriptions/listen`` for it. A change notice forgets the listing
    at once (on the event loop, before anything else runs there); a lost subscription stops
    keeping one; a listing older than ``TOOLS_CACHE_SECONDS`` is read again regardless."""

    told: bool = False
    listed: dict[str, tuple[dict[str, Any], str]] | None = None
    listed_at: float = 0.0
    #: Bumped by every notice, so a listing read while one arrived is not kept.
    generation: int = 0

    def current(self) -> dict[str, tuple[dict[str, Any], str]] | None:
        if self.listed is None or not self.told:
            return None
        if time.monotonic() - self.listed_at >= float(mcp_settings.TOOLS_CACHE_SECONDS):
            return None
        return self.listed

    def keep(self, listed: dict[str, tuple[dict[str, Any], str]], generation: int) -> None:
        """Keep ``listed`` (read from ``generation`` on) unless a notice came in since."""
        if self.told and generation == self.generation:
            self.listed, self.listed_at = listed, time.monotonic()

    def forget(self) -> None:
        self.generation += 1
        self.listed = None

    def lost(self) -> None:
        self.told = False
        self.forget()


@dataclass(frozen=True)
class Notices:
    """Where a session's announcements go: ``watch`` forgets its listing on the event loop,
    then ``on_tools_changed`` (sync code, which may use the database) runs in a worker
    thread, never on the event loop, once per ``notifications/tools/list_changed``."""

    on_tools_changed: Callable[[], None]
    watch: ToolWatch = field(default_factory=ToolWatch)

    async def tools_changed(self) -> None:
        self.watch.forget()
        await anyio.to_thread.run_sync(self.on_tools_changed)

    async def handle(self, message: Any) -> None:
        if isinstance(message, mcp_types.ToolListChangedNotification):
            await self.tools_changed()
        await anyio.lowlevel.checkpoint()


@dataclass(frozen=True)
class Connection:
    """How to reach one server, resolved in sync code before any async work starts."""

    transport: str
    url: str = ""
    headers: dict[str, str] = field(default_factory=dict, repr=False)
    tenant: Tenant | None = None
    stdio: StdioServerParameters | None = None
    #: The SDK's OAuth client for a server that demands OAuth, and a digest of its credentials.
    auth: httpx2.Auth | None = field(default=None, repr=False)
    auth_digest: str = ""


def stdio_parameters(name: str) -> StdioServerParameters:
    """The settings-listed command ``name``; StdioCommandNotAllowed for any other name."""
    commands = mcp_settings.STDIO_COMMANDS or {}
    entry = commands.get(name) if name else None
    if not isinstance(entry, dict) or not entry.get("command"):
        raise StdioCommandNotAllowed(
            f"stdio command {name!r} is not listed in AUTOMATE_MCP['STDIO_COMMANDS']",
            details={"stdio_command": name},
        )
    return StdioServerParameters(
        command=str(entry["command"]),
        args=[str(a) for a in entry.get("args", [])],
        env={str(k): str(v) for k, v in (entry.get("env") or {}).items()} or None,
        cwd=entry.get("cwd"),
    )


def check_stdio_command(name: str) -> None:
    """ValidationError (for forms) unless ``name`` is a key of STDIO_COMMANDS."""
    try:
        stdio_parameters(name)
    except StdioCommandNotAllowed as exc:
        raise ValidationError(exc.message) from None


def connection_for(server: MCPServer) -> Connection:
    """The :class:`Connection` of ``server``; raises EgressDenied for a refused URL and
    StdioCommandNotAllowed for a command the settings do not list."""
    tenant = server.tenant
    if server.transport == "stdio":
        return Connection(
            transport="stdio", tenant=tenant, stdio=stdio_parameters(server.stdio_command)
        )
    check_url(server.url, tenant)  # a clear refusal before the SDK starts; requests re-check
    auth, digest = None, ""
    oauth = (server.auth_config or {}).get("oauth")
    if oauth:
        from mcp_bridge.oauth import oauth_provider

        auth, digest = oauth_provider(oauth, server_id=server.pk, url=server.url, tenant=tenant)
    return Connection(
        transport=server.transport,
        url=server.url,
        headers=auth_headers(server.auth_config, tenant),
        tenant=tenant,
        auth=auth,
        auth_digest=digest,
    )


def _http_client(connection: Connection, **options: Any) -> httpx2.AsyncClient:
    timeout = httpx2.Timeout(float(mcp_settings.CONNECT_TIMEOUT_SECONDS), read=_SSE_READ_TIMEOUT)
    return async_httpx2_client(
        connection.tenant,
        headers={**connection.headers, **(options.pop("headers", None) or {})},
        timeout=options.pop("timeout", timeout),
        auth=options.pop("auth", None) or connection.auth,
        **options,
    )


async def _enter(stack: AsyncExitStack, transport: Any, notices: Notices | None) -> Client:
    # No cancel scope of its own here: the client's task groups outlive this call, so the
    # whole session is bounded by the caller's (see run()); each request by the read timeout.
    client = Client(
        transport,
        client_info=mcp_types.Implementation(name="django-automate", version="1"),
        read_timeout_seconds=float(mcp_settings.CONNECT_TIMEOUT_SECONDS),
        message_handler=notices.handle if notices is not None else None,
    )
    return await stack.enter_async_context(client)


def _sse_transport(connection: Connection) -> Any:
    def factory(headers: Any = None, timeout: Any = None, auth: Any = None) -> httpx2.AsyncClient:
        return _http_client(connection, headers=headers, timeout=timeout, auth=auth)

    return sse_client(
        connection.url,
        timeout=float(mcp_settings.CONNECT_TIMEOUT_SECONDS),
        sse_read_timeout=_SSE_READ_TIMEOUT,
        httpx_client_factory=factory,
    )


@asynccontextmanager
async def open_session(
    connection: Connection, notices: Notices | None = None
) -> AsyncIterator[Client]:
    """An initialized SDK client for ``connection``; closed (and its subprocess or HTTP
    session ended) when the block ends. Server notifications go to ``notices``. Failures
    raise our errors (see :func:`translate`)."""
    async with AsyncExitStack() as stack:
        try:
            client = await _open(stack, connection, notices)
            if notices is not None:
                await _listen(stack, client, notices)
        except Exception as exc:
            raise translate(exc) from exc
        yield client


async def _listen(stack: AsyncExitStack, client: Client, notices: Notices) -> None:
    """Subscribe to tool-list changes for the rest of the session, where the server offers
    them: a ``subscriptions/listen`` stream (2026-07-28 servers), whose events a background
    task hands to ``notices``. Earlier servers send the notification unasked (the handler)."""
    tools = getattr(client.server_capabilities, "tools", None)
    if not getattr(tools, "list_changed", False):
        return
    try:
        subscription = await stack.enter_async_context(client.listen(tools_list_changed=True))
    except ListenNotSupportedError:
        notices.watch.told = True  # an earlier server sends the notification unasked
        return
    notices.watch.told = bool(subscription.honored.tools_list_changed)

    async def read() -> None:
        try:
            with contextlib.suppress(SubscriptionLost):
                async for event in subscription:
                    if isinstance(event, ToolsListChanged):
                        await notices.tools_changed()
        finally:
            notices.watch.lost()  # no stream, no notices: every call lists again

    group = await stack.enter_async_context(anyio.create_task_group())
    group.start_soon(read)
    stack.callback(group.cancel_scope.cancel)  # runs first when the session ends


async def _open(stack: AsyncExitStack, connection: Connection, notices: Notices | None) -> Client:
    if connection.transport == "stdio":
        return await _enter(stack, stdio_client(connection.stdio), notices)  # type: ignore[arg-type]
    if connection.transport == "sse":
        return await _enter(stack, _sse_transport(connection), notices)
    http = await stack.enter_async_context(_http_client(connection))
    try:
        async with AsyncExitStack() as attempt:
            transport = streamable_http_client(connection.url, http_client=http)
            client = await _enter(attempt, transport, notices)
            stack.push_async_exit(attempt.pop_all())
            return client
    except Exception as exc:
        if not _refused_by_server(exc):
            raise
    return await _enter(stack, _sse_transport(connection), notices)


def _leaves(exc: BaseException) -> list[BaseException]:
    if isinstance(exc, BaseExceptionGroup):
        return [leaf for inner in exc.exceptions for leaf in _leaves(inner)]
    return [exc]


def _refused_by_server(exc: BaseException) -> bool:
    """The server answered the streamable HTTP handshake with an error status: maybe a
    legacy SSE server (connection failures and policy refusals are not retried)."""
    return any(isinstance(leaf, MCPError | httpx2.HTTPStatusError) for leaf in _leaves(exc))


def translate(exc: BaseException) -> Exception:
    """Our error for a failure inside the SDK (whose task groups wrap errors in groups)."""
    leaves = _leaves(exc)
    for leaf in leaves:
        if isinstance(leaf, AutomateError):  # ours: a policy refusal, a sign-in needed
            return leaf
    for leaf in leaves:
        if isinstance(leaf, TimeoutError | httpx2.TimeoutException):
            return ToolCallTimeout("The MCP server did not answer in time.")
    first = leaves[0] if leaves else exc
    return MCPConnectionError(f"MCP session failed: {type(first).__name__}: {first}"[:1000])


def definition_of(tool: mcp_types.Tool) -> dict[str, Any]:
    """A tool from ``tools/list`` as a definition dict in MCP wire names (None for missing)."""
    dumped = tool.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {name: dumped.get(name) for name in DEFINITION_FIELDS}


async def list_tools(
    client: Client, *, on_page: Callable[[int, int], None] | None = None
) -> list[dict[str, Any]]:
    """Every tool of the server, following ``nextCursor`` up to MAX_LIST_PAGES pages, fetched
    fresh (``cache_mode="refresh"``); ``on_page(pages, tools)`` after each page."""
    tools: list[dict[str, Any]] = []
    cursor: str | None = None
    for page_number in range(1, int(mcp_settings.MAX_LIST_PAGES) + 1):
        page = await client.list_tools(cursor=cursor, cache_mode="refresh")
        tools.extend(definition_of(tool) for tool in page.tools)
        if on_page is not None:
            on_page(page_number, len(tools))
        cursor = page.next_cursor
        if not cursor:
            return tools
    raise MCPConnectionError(
        f"tools/list did not end within {mcp_settings.MAX_LIST_PAGES} pages",
        details={"pages": int(mcp_settings.MAX_LIST_PAGES)},
    )


async def count_listed(client: Client, method: str) -> int | None:
    """How many resources or prompts the server lists (None when it has no such capability)."""
    capabilities = client.server_capabilities
    if getattr(capabilities, method, None) is None:
        return None
    fetch = client.list_resources if method == "resources" else client.list_prompts
    count, cursor = 0, None
    for _ in range(int(mcp_settings.MAX_LIST_PAGES)):
        page = await fetch(cursor=cursor, cache_mode="refresh")
        count += len(page.resources if method == "resources" else page.prompts)  # type: ignore[union-attr]
        cursor = page.next_cursor
        if not cursor:
            break
    return count


def run(work: Callable[[], Awaitable[T]], *, timeout: float | None = None) -> T:
    """Run async MCP work from sync code, within ``timeout`` seconds when given."""

    async def bounded() -> T:
        if timeout is None:
            return await work()
        with anyio.fail_after(timeout):
            return await work()

    try:
        return anyio.run(bounded)
    except Exception as exc:
        leaves = _leaves(exc)
        ours = next((leaf for leaf in leaves if isinstance(leaf, AutomateError)), None)
        if ours is not None:
            raise ours from None
        raise translate(exc) from exc


async def probe(connection: Connection) -> dict[str, Any]:
    """Open a session and say what the server is; raises on failure."""
    started = time.perf_counter()
    async with open_session(connection) as client:
        info = client.server_info
        return {
            "ok": True,
            "latency_ms": round((time.perf_counter() - started) * 1000, 1),
            "protocol_version": client.protocol_version,
            "server_info": info.model_dump(mode="json", exclude_none=True) if info else None,
        }
