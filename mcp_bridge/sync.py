"""Tool sync: list everything a server offers now and record what changed.

For each tool the live definition is pinned (:mod:`mcp_bridge.pins`) and compared with what is
stored:

* a new tool is ``pending`` (or ``approved``, with a first version, when the server has
  ``auto_approve_new``);
* a tool whose pin differs from its approved version is ``quarantined``: calls are refused
  until a person approves the new definition (audited, one row per tool);
* a quarantined tool whose definition went back to the approved one is ``approved`` again;
* a tool no longer listed is ``removed`` (kept, with its versions);
* a tool whose pin did not change is not written at all, so a re-sync of an unchanged server
  writes no tool, version or audit row (only the server's ``last_synced_at`` and stats).

The listing is fetched before the transaction that applies it, so no database transaction is
held open while the server answers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

from django.db import transaction
from django.utils import timezone

from automate_core.errors import AutomateError
from automate_core.governance import audit
from mcp_bridge import client
from mcp_bridge.conf import mcp_settings
from mcp_bridge.models import MCPServer, MCPTool, MCPToolVersion
from mcp_bridge.pins import pin_of

#: ``progress(phase, done)``: phase "tools" (tools listed so far) or "applied" (tools stored).
Progress = Callable[[str, int], None]

AUTO_APPROVER = "system:auto_approve"


@dataclass
class Listing:
    tools: list[dict[str, Any]]
    pages: int
    resources: int | None
    prompts: int | None


@dataclass
class SyncReport:
    server: str
    tools: int = 0
    pages: int = 0
    resources: int | None = None
    prompts: int | None = None
    created: list[str] = field(default_factory=list)
    quarantined: list[str] = field(default_factory=list)
    restored: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return any((self.created, self.quarantined, self.restored, self.updated, self.removed))

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def fetch_listing(server: MCPServer, *, progress: Progress | None = None) -> Listing:
    """Everything ``server`` lists now (tools in full, resources and prompts counted)."""
    connection = client.connection_for(server)
    pages = 0

    def on_page(page: int, tools: int) -> None:
        nonlocal pages
        pages = page
        if progress is not None:
            progress("tools", tools)

    async def work() -> Listing:
        async with client.open_session(connection) as session:
            tools = await client.list_tools(session, on_page=on_page)
            resources = await client.count_listed(session, "resources")
            prompts = await client.count_listed(session, "prompts")
        return Listing(tools=tools, pages=pages, resources=resources, prompts=prompts)

    return client.run(work, timeout=float(mcp_settings.SYNC_TIMEOUT_SECONDS))


def sync_server(
    server: MCPServer, *, progress: Progress | None = None, actor: str = "system"
) -> SyncReport:
    """Fetch ``server``'s listing and apply it; a failure is recorded on the server (status
    ``error``, ``last_error``) and raised."""
    try:
        listing = fetch_listing(server, progress=progress)
    except AutomateError as exc:
        MCPServer.objects.filter(pk=server.pk).update(
            status=MCPServer.Status.ERROR, last_error=exc.message[:2000]
        )
        raise
    report = apply_listing(server, listing, actor=actor)
    if progress is not None:
        progress("applied", report.tools)
    return report


def store_definition(tool: MCPTool, definition: dict[str, Any], pin: str) -> None:
    tool.title = definition.get("title") or ""
    tool.description = definition.get("description") or ""
    tool.input_schema = definition.get("inputSchema") or {}
    tool.output_schema = definition.get("outputSchema")
    tool.annotations = definition.get("annotations")
    tool.live_pin = pin


LIVE_FIELDS = [
    "title", "description", "input_schema", "output_schema", "annotations", "live_pin",
    "last_seen_at", "updated_at",
]  # fmt: skip


def status_for(tool: MCPTool) -> str:
    """The status a (re)listed tool's stored live pin calls for; ``rejected`` stays."""
    if tool.status == MCPTool.Status.REJECTED:
        return tool.status
    if tool.approved_version is None:
        return MCPTool.Status.PENDING
    if tool.approved_version.pin == tool.live_pin:
        return MCPTool.Status.APPROVED
    return MCPTool.Status.QUARANTINED


def apply_listing(server: MCPServer, listing: Listing, *, actor: str = "system") -> SyncReport:
    """Record ``listing`` as ``server``'s tools, in one transaction (see the module doc)."""
    report = SyncReport(
        server=server.slug,
        tools=len(listing.tools),
        pages=listing.pages,
        resources=listing.resources,
        prompts=listing.prompts,
    )
    now = timezone.now()
    with transaction.atomic():
        existing = {
            tool.name: tool
            for tool in MCPTool.objects.filter(server=server)
            .select_related("approved_version")
            .select_for_update(of=("self",))
        }
        new_tools: list[tuple[MCPTool, dict[str, Any]]] = []
        listed: set[str] = set()
        for definition in listing.tools:
            name = definition["name"]
            if name in listed:
                continue  # a server listing a name twice: the first definition counts
            listed.add(name)
            pin = pin_of(definition)
            tool = existing.get(name)
            if tool is None:
                tool = MCPTool(tenant_id=server.tenant_id, server=server, name=name)
                store_definition(tool, definition, pin)
                tool.last_seen_at = now
                new_tools.append((tool, definition))
            elif tool.live_pin != pin or tool.status == MCPTool.Status.REMOVED:
                _apply_change(tool, definition, pin, now, report, actor)
        for name, tool in existing.items():
            if name not in listed and tool.status != MCPTool.Status.REMOVED:
                tool.transition_to(MCPTool.Status.REMOVED)
                report.removed.append(name)
        if new_tools:
            _create(server, new_tools, now, report)
        server_fields: dict[str, Any] = {
            "status": MCPServer.Status.READY,
            "last_synced_at": now,
            "last_error": "",
            "sync_stats": {
                "tools": report.tools,
                "pages": report.pages,
                "resources": report.resources,
                "prompts": report.prompts,
            },
        }
        MCPServer.objects.filter(pk=server.pk).update(**server_fields)
        for name, value in server_fields.items():
            setattr(server, name, value)
        if report.changed:
            audit.record(
                "mcp.server.sync",
                actor=actor,
                tenant=server.tenant,
                target=f"mcp.server:{server.slug}",
                data={k: v for k, v in report.to_json().items() if v},
            )
    return report


def _apply_change(
    tool: MCPTool,
    definition: dict[str, Any],
    pin: str,
    now: Any,
    report: SyncReport,
    actor: str,
) -> None:
    previous_pin, was = tool.live_pin, tool.status
    store_definition(tool, definition, pin)
    tool.last_seen_at = now
    tool.save(update_fields=LIVE_FIELDS)
    target = status_for(tool)
    if target != was:
        tool.transition_to(target)
    if target == MCPTool.Status.QUARANTINED and was != MCPTool.Status.QUARANTINED:
        report.quarantined.append(tool.name)
        record_quarantine(tool, previous_pin=previous_pin, actor=actor, seen_by="sync")
    elif target == MCPTool.Status.APPROVED and was != MCPTool.Status.APPROVED:
        report.restored.append(tool.name)
    else:
        report.updated.append(tool.name)


def record_quarantine(tool: MCPTool, *, previous_pin: str, actor: str, seen_by: str) -> None:
    """The audit row of a tool quarantined because its definition changed."""
    audit.record(
        "mcp.tool.quarantined",
        actor=actor,
        tenant=tool.server.tenant,
        target=f"mcp.tool:{tool}",
        data={
            "seen_by": seen_by,
            "approved_pin": tool.approved_pin,
            "previous_pin": previous_pin,
            "live_pin": tool.live_pin,
        },
    )


def _create(
    server: MCPServer,
    new_tools: list[tuple[MCPTool, dict[str, Any]]],
    now: Any,
    report: SyncReport,
) -> None:
    approve = server.auto_approve_new
    tools = [tool for tool, _ in new_tools]
    for tool in tools:
        tool.status = MCPTool.Status.APPROVED if approve else MCPTool.Status.PENDING
        tool.status_changed_at = now
    MCPTool.objects.bulk_create(tools)
    report.created.extend(tool.name for tool in tools)
    if not approve:
        return
    versions = [
        MCPToolVersion(
            tenant_id=server.tenant_id,
            tool=tool,
            number=1,
            definition=tool.live_definition,
            pin=tool.live_pin,
            approved_by=AUTO_APPROVER,
            approved_at=now,
        )
        for tool in tools
    ]
    MCPToolVersion.objects.bulk_create(versions)
    for tool, version in zip(tools, versions, strict=True):
        tool.approved_version = version
    MCPTool.objects.bulk_update(tools, ["approved_version"])
