"""The ASGI app that serves ``/mcp`` beside Django's.

Django's ASGI handler refuses the lifespan protocol, but the SDK's streamable HTTP apps need
it (their session manager's task group starts there; without it a request fails with "Task
group is not initialized"). :class:`MCPMount` therefore answers the lifespan itself, entering
the MCP apps' lifespans, and routes to them:

* ``/mcp`` and the OAuth protected-resource metadata (``/.well-known/oauth-protected-resource
  /mcp``): the keyed app. The SDK's bearer middleware verifies the API key (a 401 names the
  metadata);
* ``/mcp/public/<tenant slug>``: the public app, for a tenant's active
  :class:`~mcp_bridge.models.PublicMCPExposure` (404 otherwise), with no key;
* everything else: Django.

Both MCP apps check the Host and Origin headers against ``SERVER_ALLOWED_HOSTS`` /
``SERVER_ALLOWED_ORIGINS`` (DNS-rebinding protection).
"""

from __future__ import annotations

import asyncio
import contextvars
import json
from contextlib import AsyncExitStack
from typing import Any
from urllib.parse import urlsplit

from mcp.server.auth.settings import AuthSettings
from mcp.server.transport_security import TransportSecuritySettings

from mcp_bridge.conf import mcp_settings
from mcp_bridge.exposure.catalog import Caller
from mcp_bridge.exposure.server import APIKeyVerifier, PlatformServer, in_thread
from mcp_bridge.models import PublicMCPExposure

METADATA_PREFIX = "/.well-known/oauth-protected-resource"
PUBLIC_PREFIX = "/mcp/public/"

#: The public exposure and client address of the request being served by the public app.
_public: contextvars.ContextVar[tuple[PublicMCPExposure, str]] = contextvars.ContextVar(
    "mcp_public_exposure"
)


def transport_security() -> TransportSecuritySettings:
    return TransportSecuritySettings(
        enable_dns_rebinding_protection=True,
        allowed_hosts=list(mcp_settings.SERVER_ALLOWED_HOSTS or []),
        allowed_origins=list(mcp_settings.SERVER_ALLOWED_ORIGINS or []),
    )


def _no_anonymous_caller() -> Caller:
    raise PermissionError("the bearer middleware lets no request without a key through")


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
        streamable_http_path="/mcp", stateless_http=True, transport_security=transport_security()
    )


def _public_caller() -> Caller:
    exposure, client = _public.get()
    return Caller.of_exposure(exposure, client)


def public_app() -> Any:
    """The Starlette app of public exposures (served at ``/mcp`` once the mount has found the
    exposure of the path's tenant)."""
    server = PlatformServer("django-automate-public", _public_caller)
    return server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, transport_security=transport_security()
    )


def _exposure(slug: str) -> PublicMCPExposure | None:
    return (
        PublicMCPExposure.objects.filter(tenant__slug=slug, is_active=True, tenant__is_active=True)
        .select_related("tenant")
        .first()
    )


class MCPMount:
    """Route ``/mcp`` (its metadata and public paths) to the MCP apps and the rest to
    ``django``; answer the lifespan. The MCP apps are built on first use, after Django is set
    up. A server run with the lifespan off (``uvicorn --lifespan off``) still works: the first
    ``/mcp`` request enters the apps' lifespans in a task that lives as long as the loop."""

    def __init__(self, django: Any) -> None:
        self.django = django
        self._apps: tuple[Any, Any] | None = None
        self._entered = False
        self._starting: asyncio.Lock | None = None
        self._holder: asyncio.Task[None] | None = None

    @property
    def apps(self) -> tuple[Any, Any]:
        if self._apps is None:
            self._apps = (keyed_app(), public_app())
        return self._apps

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        path = scope.get("path", "")
        if path.startswith(PUBLIC_PREFIX):
            await self._serve_public(path[len(PUBLIC_PREFIX) :].strip("/"), scope, receive, send)
        elif path == "/mcp" or path.startswith(("/mcp/", METADATA_PREFIX)):
            await self._ready()
            await self.apps[0](scope, receive, send)
        else:
            await self.django(scope, receive, send)

    async def _serve_public(
        self, slug: str, scope: dict[str, Any], receive: Any, send: Any
    ) -> None:
        exposure = await in_thread(lambda: _exposure(slug)) if "/" not in slug else None
        if exposure is None:
            await _json(send, 404, {"code": "not_found", "message": "No public MCP server here."})
            return
        await self._ready()
        client = (scope.get("client") or ("unknown", 0))[0]
        token = _public.set((exposure, str(client)))
        try:
            await self.apps[1]({**scope, "path": "/mcp", "raw_path": b"/mcp"}, receive, send)
        finally:
            _public.reset(token)

    async def _lifespan(self, receive: Any, send: Any) -> None:
        await receive()  # lifespan.startup
        async with AsyncExitStack() as stack:
            try:
                await self._enter(stack)
            except Exception as exc:
                await send({"type": "lifespan.startup.failed", "message": str(exc)})
                return
            await send({"type": "lifespan.startup.complete"})
            await receive()  # lifespan.shutdown
        await send({"type": "lifespan.shutdown.complete"})

    async def _enter(self, stack: AsyncExitStack) -> None:
        for app in self.apps:
            await stack.enter_async_context(app.router.lifespan_context(app))
        self._entered = True

    async def _ready(self) -> None:
        if self._entered:
            return
        self._starting = self._starting or asyncio.Lock()
        async with self._starting:
            if self._entered:
                return
            entered = asyncio.Event()

            async def hold() -> None:
                async with AsyncExitStack() as stack:
                    await self._enter(stack)
                    entered.set()
                    await asyncio.Event().wait()  # until the loop ends

            self._holder = asyncio.get_running_loop().create_task(hold())
            await entered.wait()


async def _json(send: Any, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", b"%d" % len(payload))]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": payload})
