"""The SDK ``MCPServer`` that serves the platform to MCP clients, per caller.

Listings and calls are answered from :mod:`mcp_bridge.exposure.catalog` for the caller of
each request: the API key the SDK's bearer middleware verified (:class:`APIKeyVerifier`), or
a public exposure's published tools. Database work runs in worker threads (never on the event
loop). Every request is rate limited per key (``SERVER_RATE_LIMIT``; per client address for a
public exposure); every tool call, prompt get and resource read writes an ``mcp.server.*``
audit row with the caller, the name, the outcome and the trace id. Model calls a tool makes
(a RAG answer) are metered to the key like the REST API's. The ``logging`` capability:
``logging/setLevel`` keeps the caller's level (:mod:`mcp_bridge.exposure.log_levels`), and
each tool call sends a ``notifications/message`` (``info`` when it succeeded, ``error`` when
it failed) on its own stream to a caller whose level admits it.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, TypeVar

import anyio.to_thread
import mcp_types
from django.db import close_old_connections
from mcp import MCPError
from mcp.server.auth.middleware.auth_context import get_access_token
from mcp.server.auth.provider import AccessToken
from mcp.server.mcpserver import MCPServer
from mcp_types.version import MODERN_PROTOCOL_VERSIONS

from automate_core.errors import AutomateError
from automate_core.governance import audit, ratelimit
from automate_core.tenancy.models import APIKey
from automate_core.tracing import new_trace_id, trace
from mcp_bridge.exposure import catalog, log_levels
from mcp_bridge.exposure.catalog import Caller, NotListed

T = TypeVar("T")


async def in_thread(fn: Callable[[], T]) -> T:
    """Run Django work in a worker thread, closing its connection when stale, as a request
    would."""

    def work() -> T:
        close_old_connections()
        try:
            return fn()
        finally:
            close_old_connections()

    return await anyio.to_thread.run_sync(work)


class APIKeyVerifier:
    """The SDK's token verifier over this platform's API keys (``Authorization: Bearer``)."""

    async def verify_token(self, token: str) -> AccessToken | None:
        key = await in_thread(lambda: APIKey.authenticate(token))
        if key is None:
            return None
        return AccessToken(
            token=token, client_id=str(key.pk), scopes=[], claims={"tenant": str(key.tenant_id)}
        )


class PlatformServer(MCPServer):
    """An ``MCPServer`` whose tools, prompts and resources are the caller's (see the catalog).

    ``caller_of`` resolves the caller of a request that carries no verified key (sync, in a
    thread): a public exposure's client.
    """

    def __init__(self, name: str, caller_of: Callable[[], Caller], **options: Any) -> None:
        super().__init__(name, **options)
        self._caller_of = caller_of
        # Registered like any request handler: the capability follows from it.
        self._lowlevel_server.add_request_handler(
            "logging/setLevel", mcp_types.SetLevelRequestParams, self._handle_set_level
        )

    async def _handle_set_level(
        self, ctx: Any, params: mcp_types.SetLevelRequestParams
    ) -> mcp_types.EmptyResult:
        caller = await self._caller()
        await in_thread(lambda: log_levels.set_level(caller, params.level))
        return mcp_types.EmptyResult()

    async def _log(self, ctx: Any, caller: Caller, level: str, data: dict[str, Any]) -> None:
        """Send ``data`` as a ``notifications/message`` on this request's stream, if the
        caller's level admits ``level`` (on 2026-07-28+ the SDK gates by the request's
        ``_meta`` opt-in instead)."""
        if ctx.protocol_version not in MODERN_PROTOCOL_VERSIONS:
            threshold = await in_thread(lambda: log_levels.level_of(caller))
            if not log_levels.admits(threshold, level):
                return
        await ctx.session.send_log_message(
            level, data, logger="django-automate", related_request_id=ctx.request_id
        )

    async def _caller(self) -> Caller:
        caller_of = self._caller_of
        token = get_access_token()

        def resolve() -> Caller:
            caller = caller_of() if token is None else key_caller(token)
            limit = ratelimit.hit("mcp.server", caller.identity, caller.rate)
            if not limit.allowed:
                raise MCPError(
                    code=-32000,
                    message=f"Rate limited; retry in {limit.retry_after:.0f} s",
                    data={"retry_after": limit.retry_after},
                )
            return caller

        return await in_thread(resolve)

    async def _handle_list_tools(
        self, ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListToolsResult:
        caller = await self._caller()
        entries = await in_thread(lambda: catalog.tools(caller))
        return mcp_types.ListToolsResult(tools=[entry.tool for entry in entries.values()])

    async def _handle_call_tool(
        self, ctx: Any, params: mcp_types.CallToolRequestParams
    ) -> mcp_types.CallToolResult:
        caller = await self._caller()
        arguments = dict(params.arguments or {})
        try:
            value = await in_thread(
                lambda: _audited(
                    caller,
                    "call",
                    params.name,
                    lambda: catalog.call(caller, params.name, arguments),
                )
            )
        except NotListed as exc:
            await self._log(ctx, caller, "error", {"tool": params.name, "error": exc.code})
            raise MCPError(code=mcp_types.INVALID_PARAMS, message=exc.message) from None
        except AutomateError as exc:
            failed = {"tool": params.name, "error": exc.code, "message": exc.message}
            await self._log(ctx, caller, "error", failed)
            return mcp_types.CallToolResult(
                content=[mcp_types.TextContent(type="text", text=f"{exc.code}: {exc.message}")],
                is_error=True,
            )
        await self._log(ctx, caller, "info", {"tool": params.name, "outcome": "ok"})
        text = json.dumps(value, default=str)
        return mcp_types.CallToolResult(
            content=[mcp_types.TextContent(type="text", text=text)],
            structured_content=value if isinstance(value, dict) else {"result": value},
        )

    async def _handle_list_prompts(
        self, ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListPromptsResult:
        caller = await self._caller()
        found = await in_thread(lambda: catalog.prompts(caller))
        return mcp_types.ListPromptsResult(
            prompts=[catalog.prompt_json(name, prompt) for name, prompt in found.items()]
        )

    async def _handle_get_prompt(
        self, ctx: Any, params: mcp_types.GetPromptRequestParams
    ) -> mcp_types.GetPromptResult:
        caller = await self._caller()
        arguments = dict(params.arguments or {})
        try:
            messages = await in_thread(
                lambda: _audited(
                    caller,
                    "prompt",
                    params.name,
                    lambda: catalog.render(caller, params.name, arguments),
                )
            )
        except AutomateError as exc:
            raise MCPError(code=mcp_types.INVALID_PARAMS, message=exc.message) from None
        return mcp_types.GetPromptResult(
            messages=[
                mcp_types.PromptMessage(
                    role="assistant" if m.role == "assistant" else "user",
                    content=mcp_types.TextContent(type="text", text=m.content),
                )
                for m in messages
            ]
        )

    async def _handle_list_resources(
        self, ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListResourcesResult:
        caller = await self._caller()
        found = await in_thread(lambda: catalog.documents(caller))
        return mcp_types.ListResourcesResult(resources=found)

    async def _handle_list_resource_templates(
        self, ctx: Any, params: mcp_types.PaginatedRequestParams | None
    ) -> mcp_types.ListResourceTemplatesResult:
        caller = await self._caller()
        templates = []
        if caller.published is None:
            templates.append(
                mcp_types.ResourceTemplate(
                    uri_template=catalog.EXECUTION_URI,
                    name="execution",
                    description="A workflow run: status, result and error, as JSON.",
                    mime_type="application/json",
                )
            )
            templates.append(
                mcp_types.ResourceTemplate(
                    uri_template=catalog.DOCUMENT_URI,
                    name="document",
                    description="A document of a RAG endpoint the key may use, as text.",
                )
            )
        return mcp_types.ListResourceTemplatesResult(resource_templates=templates)

    async def _handle_read_resource(
        self, ctx: Any, params: mcp_types.ReadResourceRequestParams
    ) -> mcp_types.ReadResourceResult:
        caller = await self._caller()
        uri = str(params.uri)
        try:
            mime_type, value = await in_thread(
                lambda: _audited(caller, "read", uri, lambda: catalog.read(caller, uri))
            )
        except AutomateError as exc:
            raise MCPError(code=mcp_types.INVALID_PARAMS, message=exc.message) from None
        text = value if isinstance(value, str) else json.dumps(value, default=str)
        return mcp_types.ReadResourceResult(
            contents=[mcp_types.TextResourceContents(uri=uri, text=text, mime_type=mime_type)]
        )


def key_caller(token: AccessToken) -> Caller:
    """The caller of a verified API key (refused if revoked since it was verified)."""
    key = APIKey.objects.usable().select_related("tenant").filter(pk=token.client_id).first()
    if key is None:
        raise MCPError(code=-32001, message="Invalid, revoked or expired API key")
    return Caller.of_key(key)


def _audited(caller: Caller, verb: str, name: str, work: Callable[[], T]) -> T:
    """Run ``work`` under a new trace id and write its ``mcp.server.<verb>`` audit row."""
    with trace(new_trace_id()):
        outcome, code = "ok", ""
        try:
            return work()
        except AutomateError as exc:
            outcome, code = "error", exc.code
            raise
        finally:
            audit.record(
                f"mcp.server.{verb}",
                actor=caller.actor,
                tenant=caller.tenant,
                target=f"mcp:{name}",
                data={"outcome": outcome, **({"error": code} if code else {})},
            )
