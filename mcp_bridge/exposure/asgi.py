"""The ASGI app that serves ``/mcp`` beside Django's.

Django's ASGI handler refuses the lifespan protocol, but the SDK's streamable HTTP app needs
it (its session manager's task group starts there; without it a request fails with "Task
group is not initialized"). :class:`MCPMount` therefore hands the lifespan to the MCP app and
routes ``/mcp``, ``/mcp/...`` and the OAuth protected-resource metadata path
(``/.well-known/oauth-protected-resource/mcp``) to it; everything else goes to Django.

The MCP app authenticates API keys with the SDK's bearer middleware (a 401 names the
protected-resource metadata), and checks the Host and Origin headers against
``SERVER_ALLOWED_HOSTS`` / ``SERVER_ALLOWED_ORIGINS`` (DNS-rebinding protection).
"""

from __future__ import annotations

import asyncio
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from mcp_bridge.conf import mcp_settings
from mcp_bridge.exposure.catalog import Caller
from mcp_bridge.exposure.server import APIKeyVerifier, PlatformServer

MCP_PREFIXES = ("/mcp", "/.well-known/oauth-protected-resource")


def _no_anonymous_caller() -> Caller:
    raise PermissionError("the bearer middleware lets no request without a key through")


def transport_security() -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(mcp_settings.SERVER_ALLOWED_HOSTS or []),
        allowed_origins=list(mcp_settings.SERVER_ALLOWED_ORIGINS or []),
    )


def keyed_app() -> Any:
    """The Starlette app of ``/mcp``: stateless streamable HTTP, API keys required."""
    url = str(mcp_settings.SERVER_URL)
    parts = urlsplit(url)
    server = PlatformServer(
        "django-automate",
        _no_anonymous_caller,
        token_verifier=APIKeyVerifier(),
        auth=AuthSettings(
            issuer_url=f"{parts.scheme}://{parts.netloc}",  # type: ignore[arg-type]
            resource_server_url=url,  # type: ignore[arg-type]
            validate_token_resource=False,  # API keys are not bound to a resource
        ),
    )
    return server.streamable_http_app(
        streamable_http_path="/mcp",
        stateless_http=True,
        transport_security=transport_security(),
    )


class MCPMount:
    """Route ``/mcp`` (and its metadata path, and the lifespan) to the MCP app, the rest to
    ``django``. The MCP app is built on first use, after Django is set up.

    A server run with the lifespan off (``uvicorn --lifespan off``) still works: the first
    ``/mcp`` request enters the MCP app's lifespan in a task that lives as long as the loop.
    """

    def __init__(self, django: Any) -> None:
        self.django = django
        self._mcp: Any = None
        self._lifespan_entered = False
        self._starting: asyncio.Lock | None = None
        self._holder: asyncio.Task[None] | None = None

    @property
    def mcp(self) -> Any:
        if self._mcp is None:
            self._mcp = keyed_app()
        return self._mcp

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            self._lifespan_entered = True
            await self.mcp(scope, receive, send)
            return
        path = scope.get("path", "")
        if path == "/mcp" or path.startswith(("/mcp/", MCP_PREFIXES[1])):
            if not self._lifespan_entered:
                await self._enter_lifespan()
            await self.mcp(scope, receive, send)
            return
        await self.django(scope, receive, send)

    async def _enter_lifespan(self) -> None:
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._lifespan_entered:
                return
            app, entered = self.mcp, asyncio.Event()

            async def hold() -> None:
                async with app.router.lifespan_context(app):
                    entered.set()
                    await asyncio.Event().wait()  # until the loop ends

            self._holder = asyncio.get_running_loop().create_task(hold())
            await entered.wait()
            self._lifespan_entered = True
