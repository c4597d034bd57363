"""Operations other apps and the API call: find servers and tools, queue syncs, check health,
approve or reject tool definitions, and call tools.

A tool call (:func:`call_tool`) does, in order, before anything is sent: the tool must be
``approved``; the argument policy applies; the arguments must fit the *approved* input schema;
the server's rate limit admits the call. Then, in one pooled session, the server's live
definition of the tool is pinned (from the session's last listing while the server tells it of
changes, else a fresh ``tools/list``): if it differs from the approved pin, the call is refused
and the tool quarantined. Only then is ``tools/call`` sent, with the caller's idempotency key in
``_meta``, within ``CALL_TIMEOUT_SECONDS``. Every call that reaches the rate limit gets one
audit row (tool, pin, redacted arguments, outcome, trace id), refused or not, queued through
the outbox (:func:`record_call`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any, cast

import mcp_types
from django.db import close_old_connections, connections, transaction
from django.db.models import Max
from django.utils import timezone

from automate_core.errors import AutomateError, ConflictError
from automate_core.governance import audit, ratelimit
from automate_core.governance.redaction import redact
from automate_core.outbox import store
from automate_core.tenancy.models import Tenant
from automate_core.tracing import current_trace_id, trace
from mcp_bridge import client, pool
from mcp_bridge.conf import mcp_settings
from mcp_bridge.errors import (
    MCPServerNotFound,
    MCPToolNotFound,
    ToolCallFailed,
    ToolCallRateLimited,
    ToolDefinitionChanged,
    ToolNotCallable,
    ToolPinChanged,
)
from mcp_bridge.models import MCPServer, MCPTool, MCPToolVersion
from mcp_bridge.pins import pin_of
from mcp_bridge.policy import apply_argument_policy, validate_arguments
from mcp_bridge.results import ToolResult, normalize
from mcp_bridge.sync import record_quarantine

#: The ``_meta`` key carrying the caller's idempotency key (stable across a step's retries),
#: so a server that honours it can skip a repeated call.
IDEMPOTENCY_META_KEY = "io.django-automate/idempotency-key"
#: The ``_meta`` key carrying the trace id of the call.
TRACE_META_KEY = "io.django-automate/trace-id"

TenantLike = Tenant | uuid.UUID | str


# -- lookups -------------------------------------------------------------------------------------


def get_server(tenant: TenantLike, key: str) -> MCPServer:
    """The tenant's server with slug (or id) ``key``; another tenant's is not found."""
    rows = MCPServer.objects.for_tenant(tenant).select_related("tenant")
    found = rows.filter(slug=key).first()
    if found is None and is_uuid(key):
        found = rows.filter(pk=key).first()
    if found is None:
        raise MCPServerNotFound(f"No MCP server {key!r} in this tenant")
    return found


def get_tool(tenant: TenantLike, server: str, name: str) -> MCPTool:
    """Tool ``name`` of the tenant's server ``server`` (slug or id)."""
    found_server = get_server(tenant, server)
    tool = (
        MCPTool.objects.filter(server=found_server, name=name)
        .select_related("server__tenant", "approved_version")
        .first()
    )
    if tool is None:
        raise MCPToolNotFound(f"No tool {name!r} on MCP server {found_server.slug!r}")
    return tool


def is_uuid(value: str) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# -- sync and health -----------------------------------------------------------------------------


def queue_sync(server: MCPServer, *, actor: str = "system") -> Any:
    """Enqueue a sync of ``server`` (outbox job ``mcp.sync``) in the caller's transaction."""
    with transaction.atomic():
        MCPServer.objects.filter(pk=server.pk).update(
            status=MCPServer.Status.QUEUED, sync_queued_at=timezone.now()
        )
        job = store.enqueue("mcp.sync", {"server": str(server.pk)}, tenant=server.tenant_id)
        audit.record(
            "mcp.server.sync_queued",
            actor=actor,
            tenant=server.tenant,
            target=f"mcp.server:{server.slug}",
        )
    return job


def tools_changed(server: MCPServer) -> None:
    """The server sent ``notifications/tools/list_changed``: queue a sync, unless one is
    already queued or running (a chatty server costs one sync, not one per notice)."""
    with transaction.atomic():
        busy = (MCPServer.Status.QUEUED, MCPServer.Status.SYNCING, MCPServer.Status.DISABLED)
        locked = MCPServer.objects.select_for_update().filter(pk=server.pk).first()
        if locked is not None and locked.status not in busy:
            queue_sync(server, actor="system:list_changed")


def check_health(server: MCPServer) -> dict[str, Any]:
    """Open a session to ``server`` now; the outcome is stored in ``server.health``."""
    started = timezone.now()
    try:
        connection = client.connection_for(server)
        health = client.run(
            lambda: client.probe(connection), timeout=float(mcp_settings.CONNECT_TIMEOUT_SECONDS)
        )
    except AutomateError as exc:
        health = {"ok": False, "error": {"code": exc.code, "message": exc.message}}
    health["checked_at"] = started.isoformat()
    MCPServer.objects.filter(pk=server.pk).update(health=health)
    server.health = health
    return health


# -- approval ------------------------------------------------------------------------------------


def approve_tool(tool: MCPTool, *, actor: str, expected_pin: str | None = None) -> MCPToolVersion:
    """Approve the tool's live definition as a new immutable version (audited).

    ``expected_pin`` is the pin the reviewer saw: if the server changed the definition since,
    the approval is refused (ConflictError) instead of approving something nobody read.
    """
    with transaction.atomic():
        locked = (
            MCPTool.objects.select_for_update(of=("self",))
            .select_related("server__tenant", "approved_version")
            .get(pk=tool.pk)
        )
        if expected_pin is not None and expected_pin != locked.live_pin:
            raise ConflictError(
                "The tool's definition changed since you reviewed it; review it again.",
                details={"expected_pin": expected_pin, "live_pin": locked.live_pin},
            )
        if locked.status == MCPTool.Status.REMOVED:
            raise ConflictError("The server no longer lists this tool.")
        previous = locked.approved_pin
        number = (locked.versions.aggregate(n=Max("number"))["n"] or 0) + 1
        version = MCPToolVersion.objects.create(
            tenant_id=locked.tenant_id,
            tool=locked,
            number=number,
            definition=locked.live_definition,
            pin=locked.live_pin,
            approved_by=actor,
            approved_at=timezone.now(),
        )
        locked.approved_version = version
        locked.save(update_fields=["approved_version", "updated_at"])
        if locked.status != MCPTool.Status.APPROVED:
            locked.transition_to(MCPTool.Status.APPROVED)
        audit.record(
            "mcp.tool.approved",
            actor=actor,
            tenant=locked.server.tenant,
            target=f"mcp.tool:{locked}",
            data={"pin": version.pin, "version": number, "previous_pin": previous},
        )
    _refresh(tool, locked)
    return version


def reject_tool(tool: MCPTool, *, actor: str) -> None:
    """Refuse the tool for calls until someone approves it (audited)."""
    with transaction.atomic():
        locked = (
            MCPTool.objects.select_for_update(of=("self",))
            .select_related("server__tenant", "approved_version")
            .get(pk=tool.pk)
        )
        if locked.status != MCPTool.Status.REJECTED:
            locked.transition_to(MCPTool.Status.REJECTED)
        audit.record(
            "mcp.tool.rejected",
            actor=actor,
            tenant=locked.server.tenant,
            target=f"mcp.tool:{locked}",
            data={"live_pin": locked.live_pin, "approved_pin": locked.approved_pin},
        )
    _refresh(tool, locked)


def _refresh(tool: MCPTool, fresh: MCPTool) -> None:
    for name in ("status", "status_changed_at", "approved_version", "approved_version_id"):
        setattr(tool, name, getattr(fresh, name))


def quarantine_changed(tool: MCPTool, definition: dict[str, Any], *, actor: str) -> None:
    """Store the changed live definition a session saw and quarantine the tool (audited)."""
    from mcp_bridge.sync import LIVE_FIELDS, store_definition

    with transaction.atomic():
        locked = (
            MCPTool.objects.select_for_update(of=("self",))
            .select_related("server__tenant", "approved_version")
            .get(pk=tool.pk)
        )
        previous = locked.live_pin
        store_definition(locked, definition, pin_of(definition))
        locked.last_seen_at = timezone.now()
        locked.save(update_fields=LIVE_FIELDS)
        if locked.status == MCPTool.Status.APPROVED:
            locked.transition_to(MCPTool.Status.QUARANTINED)
            record_quarantine(locked, previous_pin=previous, actor=actor, seen_by="call")
    _refresh(tool, locked)


# -- calls ---------------------------------------------------------------------------------------


def call(
    tenant: TenantLike, server: str, tool: str, arguments: Mapping[str, Any], **options: Any
) -> ToolResult:
    """Call tool ``tool`` of the tenant's server ``server`` (see :func:`call_tool`)."""
    return call_tool(get_tool(tenant, server, tool), arguments, **options)


def call_tool(
    tool: MCPTool,
    arguments: Mapping[str, Any],
    *,
    idempotency_key: str | None = None,
    actor: str = "system",
    timeout: float | None = None,
    pin: str | None = None,
) -> ToolResult:
    """Call ``tool`` with ``arguments`` (see the module doc for every check, in order).

    ``pin`` is the approved pin the caller was built with (a published workflow version's):
    when the tool's approved pin is now another, ToolPinChanged is raised before anything else.

    Raises ToolNotCallable (not approved, or the server disabled), InvalidToolArguments
    (policy or schema), ToolCallRateLimited, ToolDefinitionChanged (the server changed the
    tool: it is now quarantined), EgressDenied / StdioCommandNotAllowed, MCPConnectionError,
    ToolCallTimeout, or ToolCallFailed (the tool answered ``isError``; the message is the server's).
    """
    if tool.status != MCPTool.Status.APPROVED or tool.approved_version is None:
        raise ToolNotCallable(
            f"MCP tool {tool} is {tool.status}; it needs an approval before it can be called",
            status=tool.status,
        )
    if tool.server.status == MCPServer.Status.DISABLED:
        raise ToolNotCallable(f"MCP server {tool.server.slug!r} is disabled", status="disabled")
    approved = tool.approved_version
    if pin is not None and pin != approved.pin:
        raise ToolPinChanged(
            f"MCP tool {tool} was approved with a new definition since this workflow version "
            "was published; publish a new version to use it",
            status=tool.status,
            details={"published_pin": pin, "approved_pin": approved.pin},
        )
    sent = apply_argument_policy(tool.argument_policy or {}, arguments)
    validate_arguments(approved.definition.get("inputSchema") or {}, sent, pin=approved.pin)
    server = tool.server
    with trace(current_trace_id()) as trace_id:
        outcome = "error"
        error: AutomateError | None = None
        try:
            limit = ratelimit.hit("mcp.call", str(server.pk), str(mcp_settings.CALL_RATE_LIMIT))
            if not limit.allowed:
                outcome = "rate_limited"
                raise ToolCallRateLimited(retry_after=limit.retry_after)
            meta = {TRACE_META_KEY: trace_id}
            if idempotency_key:
                meta[IDEMPOTENCY_META_KEY] = idempotency_key
            seen, payload = _call_checked(tool, approved.pin, sent, meta, timeout)
            if seen == "missing":
                outcome = "removed"
                raise ToolNotCallable(
                    f"MCP server {server.slug!r} no longer lists tool {tool.name!r}",
                    status=MCPTool.Status.REMOVED,
                )
            if seen == "changed":
                outcome = "quarantined"
                quarantine_changed(tool, payload, actor="system:call")
                raise ToolDefinitionChanged(
                    f"MCP tool {tool} changed since it was approved; the call was not sent and "
                    "the tool is quarantined until someone approves the new definition",
                    status=MCPTool.Status.QUARANTINED,
                    details={"approved_pin": approved.pin, "live_pin": pin_of(payload)},
                )
            result = normalize(payload, tool=tool.name, server=server.slug, pin=approved.pin)
            outcome = "tool_error" if result.is_error else "ok"
            if result.is_error:
                raise ToolCallFailed(
                    result.text or f"MCP tool {tool} reported an error",
                    details={"tool": tool.name, "server": server.slug},
                )
            return result
        except AutomateError as exc:
            error = exc
            raise
        finally:
            record_call(
                tool,
                actor=actor,
                data={
                    "pin": approved.pin,
                    "arguments": sent,
                    "outcome": outcome,
                    "idempotency_key": idempotency_key or "",
                    **({"error": error.code} if error is not None else {}),
                },
            )


#: The outbox job that appends a tool call's audit row (see :func:`record_call`).
CALL_AUDIT_JOB = "mcp.call_audit"


def record_call(tool: MCPTool, *, actor: str, data: dict[str, Any]) -> None:
    """Queue the ``mcp.tool.call`` audit row of one call: one insert into the outbox (durable
    when it returns, or with the caller's transaction), redacted already, so the call does not
    wait on the audit chain's lock; a worker appends the row (:mod:`mcp_bridge.tasks`)."""
    store.enqueue(
        CALL_AUDIT_JOB,
        {
            "actor": actor,
            "target": f"mcp.tool:{tool}",
            "data": redact({**data, "called_at": timezone.now().isoformat()}),
        },
        tenant=tool.tenant_id,
    )


def _call_checked(
    tool: MCPTool,
    approved_pin: str,
    arguments: dict[str, Any],
    meta: dict[str, str],
    timeout: float | None,
) -> tuple[str, Any]:
    """On one pooled session: read the live definition, then call only if its pin is the
    approved one. Returns ("called", CallToolResult), ("changed", live definition) or
    ("missing", None). A tools/list_changed notice on the session queues a sync.

    The live definitions are those the session last listed while it is told of changes (see
    :class:`~mcp_bridge.client.ToolWatch`): then the check is a dictionary lookup, and a
    notice makes the next call list again."""
    connection = client.connection_for(tool.server)
    limit = float(timeout if timeout is not None else mcp_settings.CALL_TIMEOUT_SECONDS)

    async def work(session: pool.PooledSession) -> tuple[str, Any]:
        live = (await _live_tools(session)).get(tool.name)
        if live is None:
            return "missing", None
        definition, live_pin = live
        if live_pin != approved_pin:
            return "changed", definition
        result = await session.client.call_tool(
            tool.name,
            arguments,
            read_timeout_seconds=limit,
            meta=cast(mcp_types.RequestParamsMeta, meta),  # an open map of _meta keys
        )
        return "called", result

    server_id = tool.server_id

    def on_tools_changed() -> None:
        close_old_connections()
        try:
            server = MCPServer.objects.select_related("tenant").filter(pk=server_id).first()
            if server is not None:
                tools_changed(server)
        finally:
            connections.close_all()  # this worker thread's own; notices are rare

    key = pool.connection_key(server_id, connection)
    return pool.pool.run(key, connection, work, timeout=limit, on_tools_changed=on_tools_changed)


async def _live_tools(session: pool.PooledSession) -> dict[str, tuple[dict[str, Any], str]]:
    """Every tool the server lists now, by name, with its pin: the session's kept listing,
    or a fresh paginated ``tools/list`` (kept when the session is told of changes)."""
    watch = session.watch
    kept = watch.current()
    if kept is not None:
        return kept
    generation = watch.generation
    listed = {d["name"]: (d, pin_of(d)) for d in await client.list_tools(session.client)}
    watch.keep(listed, generation)
    return listed
