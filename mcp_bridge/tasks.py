"""Outbox handlers of the MCP bridge (the worker imports every app's ``tasks`` module), and
the scheduled syncs the workers' maintenance queues (:mod:`mcp_bridge.schedule`).

``mcp.sync`` commits its own work (``commits=True``): the server's listing is fetched outside
any transaction, applied in one transaction, and the job completed in the next. A sync is
idempotent (an unchanged listing writes nothing), so a retry after a lost lease is harmless.

``mcp.call_audit`` appends a tool call's audit row in the transaction that completes the job,
so the row is written once even if the job runs again after a lost lease.
"""

from __future__ import annotations

from django.db import transaction

from automate_core.governance import audit
from automate_core.outbox import maintenance, store
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_core.tenancy.models import Tenant
from mcp_bridge import schedule, services, sync
from mcp_bridge.models import MCPServer


@outbox_handler("mcp.sync", commits=True)
def run_sync(lease: Lease) -> None:
    """Sync one server (``{"server": id}``) of the job's tenant."""
    payload = lease.payload or {}
    server = (
        MCPServer.objects.filter(pk=str(payload.get("server")), tenant_id=lease.tenant_id)
        .select_related("tenant")
        .first()
        if lease.tenant_id is not None
        else None
    )
    if server is not None and server.status != MCPServer.Status.DISABLED:
        MCPServer.objects.filter(pk=server.pk).update(status=MCPServer.Status.SYNCING)
        sync.sync_server(server)
    with transaction.atomic():
        store.complete(lease)


@outbox_handler(services.CALL_AUDIT_JOB)
def record_call_audit(lease: Lease) -> None:
    """Append the ``mcp.tool.call`` audit row queued by :func:`services.record_call` (under
    the call's trace id, which the worker sets from the job)."""
    payload = lease.payload
    tenant = Tenant.objects.filter(pk=lease.tenant_id).first() if lease.tenant_id else None
    audit.record(
        "mcp.tool.call",
        actor=payload["actor"],
        tenant=tenant,
        target=payload["target"],
        data=payload["data"],
    )


maintenance.register("mcp.scheduled_syncs", schedule.queue_due_syncs, every="reap")
