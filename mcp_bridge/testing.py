"""A real MCP server for tests and benchmarks, built with the SDK's ``MCPServer`` and served by
uvicorn on a loopback port (streamable HTTP, or legacy SSE), that a test changes between
syncs: add, redescribe or remove tools while the server runs. Like a well-behaved server, it
announces each change to listening sessions (``subscriptions/listen``).

Loopback is refused by the egress policy by default: allow it in the test with
:func:`automate_core.testing.fake_network.configure_egress` (``EGRESS_ALLOW_PRIVATE``).
"""

from __future__ import annotations

import asyncio
import secrets
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import mcp_types
from mcp.server.auth.provider import (
    AccessToken,
    AuthorizationCode,
    AuthorizationParams,
    OAuthAuthorizationServerProvider,
    ProviderTokenVerifier,
    RefreshToken,
    construct_redirect_uri,
)
from mcp.server.auth.settings import AuthSettings, ClientRegistrationOptions
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.subscriptions import InMemorySubscriptionBus, ToolsListChanged
from mcp.shared.auth import OAuthClientInformationFull, OAuthToken

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
    server: _PagedMCPServer = field(init=False)
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
    def serving(
        self,
        *,
        transport: str = "streamable_http",
        oauth: AuthorizationServer | None = None,
        sign_in: SignInServer | None = None,
    ) -> Iterator[str]:
        """Serve until the block ends; yields the endpoint URL (``.../mcp`` or ``.../sse``).
        With ``oauth``, every MCP request needs one of its tokens (401 otherwise), and it
        answers its metadata and token endpoints beside the MCP server. With ``sign_in``, the
        SDK's own authorization server routes serve the authorization code grant."""
        listener = loopback_listener()
        base_url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        if sign_in is not None:
            self.server.settings.auth = AuthSettings(
                issuer_url=base_url,  # type: ignore[arg-type]
                resource_server_url=f"{base_url}/mcp",  # type: ignore[arg-type]
                client_registration_options=ClientRegistrationOptions(enabled=True),
                validate_token_resource=False,
            )
            # What MCPServer(auth_server_provider=...) sets.
            self.server._auth_server_provider = sign_in
            self.server._token_verifier = ProviderTokenVerifier(sign_in)
        if oauth is not None:
            self.server.settings.auth = AuthSettings(
                issuer_url=base_url,  # type: ignore[arg-type]
                resource_server_url=f"{base_url}/mcp",  # type: ignore[arg-type]
                validate_token_resource=False,  # its tokens name no resource
            )
            self.server._token_verifier = oauth  # what MCPServer(token_verifier=...) sets
        if transport == "sse":
            inner, path = self.server.sse_app(), "/sse"
        else:
            inner, path = self.server.streamable_http_app(), "/mcp"

        async def app(scope: Any, receive: Any, send: Any) -> None:
            if scope["type"] == "lifespan":
                self._loop = asyncio.get_running_loop()  # where announce() publishes
            if oauth is not None and scope["type"] == "http" and oauth.serves(scope["path"]):
                await oauth.app(base_url)(scope, receive, send)
                return
            await inner(scope, receive, send)

        with serve_with_lifespan(app, listener) as base:
            self.url = f"{base}{path}"
            try:
                yield self.url
            finally:
                self._loop = None
                pool.close_all()  # pooled sessions would hold the server's shutdown open


def loopback_listener() -> socket.socket:
    """A socket bound to a free loopback port, for :func:`serve_with_lifespan` (bind first
    when the app must know its own URL, as an OAuth resource server does)."""
    listener = socket.socket()
    # Accepted connections inherit it: small SSE writes are not held back by Nagle's
    # algorithm waiting on the client's delayed ACK (40 ms a request on loopback).
    listener.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    listener.bind(("127.0.0.1", 0))
    return listener


@contextmanager
def serve_with_lifespan(app: Any, listener: socket.socket | None = None) -> Iterator[str]:
    """Serve the ASGI ``app`` with uvicorn on a loopback port, lifespan on (the SDK's apps
    start their session manager there), until the block ends; yields the base URL."""
    import uvicorn

    listener = listener or loopback_listener()
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


@dataclass
class AuthorizationServer:
    """A small OAuth 2.1 authorization server for tests, served beside a :class:`ToolServer`
    (``serving(oauth=...)``): RFC 8414 metadata and a token endpoint with the
    ``client_credentials`` and ``refresh_token`` grants (``client_secret_basic``), and the
    SDK's token verifier for the MCP server. The first access token expires at once
    (``expires_in=0``), so a client must refresh it on its next request."""

    client_id: str = "automate-tests"
    client_secret: str = field(default_factory=lambda: secrets.token_urlsafe(24))
    #: The grant of each token request answered, in order.
    grants: list[str] = field(default_factory=list)
    #: Access tokens issued, newest last.
    issued: list[str] = field(default_factory=list)
    _refresh_tokens: set[str] = field(default_factory=set, repr=False)

    PATHS = ("/.well-known/oauth-authorization-server", "/token")

    def serves(self, path: str) -> bool:
        return path in self.PATHS

    async def verify_token(self, token: str) -> AccessToken | None:
        if token not in self.issued:
            return None
        return AccessToken(token=token, client_id=self.client_id, scopes=[])

    def app(self, base_url: str) -> Any:
        from starlette.requests import Request
        from starlette.responses import JSONResponse

        async def asgi(scope: Any, receive: Any, send: Any) -> None:
            request = Request(scope, receive)
            if request.url.path != "/token":
                response = JSONResponse(
                    {
                        "issuer": base_url,
                        "authorization_endpoint": f"{base_url}/authorize",
                        "token_endpoint": f"{base_url}/token",
                        "response_types_supported": ["code"],
                        "grant_types_supported": ["client_credentials", "refresh_token"],
                        "token_endpoint_auth_methods_supported": ["client_secret_basic"],
                    }
                )
            else:
                response = self._token(request.headers, dict(await request.form()))
            await response(scope, receive, send)

        return asgi

    def _token(self, headers: Any, form: dict[str, Any]) -> Any:
        import base64

        from starlette.responses import JSONResponse

        expected = f"{self.client_id}:{self.client_secret}".encode()
        if headers.get("authorization") != "Basic " + base64.b64encode(expected).decode():
            return JSONResponse({"error": "invalid_client"}, status_code=401)
        grant = form.get("grant_type")
        if grant == "refresh_token" and form.get("refresh_token") in self._refresh_tokens:
            expires_in = 3600
        elif grant == "client_credentials":
            expires_in = 0
        else:
            return JSONResponse({"error": "invalid_grant"}, status_code=400)
        self.grants.append(str(grant))
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.issued.append(access)
        self._refresh_tokens.add(refresh)
        return JSONResponse(
            {
                "access_token": access,
                "token_type": "Bearer",
                "expires_in": expires_in,
                "refresh_token": refresh,
            }
        )


@dataclass
class SignInServer(OAuthAuthorizationServerProvider[AuthorizationCode, RefreshToken, AccessToken]):
    """An in-memory ``OAuthAuthorizationServerProvider`` for the SDK's authorization server
    routes: clients register themselves, and ``/authorize`` approves at once (the person has
    already said yes), sending the browser back to the client's redirect URI with a code."""

    clients: dict[str, OAuthClientInformationFull] = field(default_factory=dict)
    codes: dict[str, AuthorizationCode] = field(default_factory=dict)
    refresh_tokens: dict[str, RefreshToken] = field(default_factory=dict)
    access_tokens: dict[str, AccessToken] = field(default_factory=dict)

    async def get_client(self, client_id: str) -> OAuthClientInformationFull | None:
        return self.clients.get(client_id)

    async def register_client(self, client_info: OAuthClientInformationFull) -> None:
        self.clients[str(client_info.client_id)] = client_info

    async def authorize(
        self, client: OAuthClientInformationFull, params: AuthorizationParams
    ) -> str:
        code = secrets.token_urlsafe(16)
        self.codes[code] = AuthorizationCode(
            code=code,
            scopes=params.scopes or [],
            expires_at=time.time() + 300,
            client_id=str(client.client_id),
            code_challenge=params.code_challenge,
            redirect_uri=params.redirect_uri,
            redirect_uri_provided_explicitly=params.redirect_uri_provided_explicitly,
            resource=params.resource,
        )
        return construct_redirect_uri(str(params.redirect_uri), code=code, state=params.state)

    async def load_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: str
    ) -> AuthorizationCode | None:
        return self.codes.get(authorization_code)

    async def exchange_authorization_code(
        self, client: OAuthClientInformationFull, authorization_code: AuthorizationCode
    ) -> OAuthToken:
        del self.codes[authorization_code.code]
        return self._issue(str(client.client_id), authorization_code.scopes)

    async def load_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: str
    ) -> RefreshToken | None:
        return self.refresh_tokens.get(refresh_token)

    async def exchange_refresh_token(
        self, client: OAuthClientInformationFull, refresh_token: RefreshToken, scopes: list[str]
    ) -> OAuthToken:
        del self.refresh_tokens[refresh_token.token]
        return self._issue(str(client.client_id), scopes or refresh_token.scopes)

    async def load_access_token(self, token: str) -> AccessToken | None:
        return self.access_tokens.get(token)

    async def revoke_token(self, token: Any) -> None:
        self.access_tokens.pop(getattr(token, "token", ""), None)

    def _issue(self, client_id: str, scopes: list[str]) -> OAuthToken:
        access, refresh = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
        self.access_tokens[access] = AccessToken(token=access, client_id=client_id, scopes=scopes)
        self.refresh_tokens[refresh] = RefreshToken(
            token=refresh, client_id=client_id, scopes=scopes
        )
        return OAuthToken(access_token=access, expires_in=3600, refresh_token=refresh)
