"""The audit trail of data chat queries, written through the outbox.

Every query attempt queues one ``datachat.audit`` job (a single prepared INSERT) instead of
appending to the hash-chained audit log inline, whose advisory lock, head read and commit cost
more than the query itself; the job's handler appends the ``datachat.query`` row under the
query's trace id. Inside the caller's transaction the job commits with the caller's work. On its
own it commits with ``synchronous_commit = off``: the row is written before the commit returns
and survives a server process crash, but a crash of the whole database host can lose the jobs of
the last few hundred milliseconds (never part of one). The queries themselves only read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection, transaction

from automate_core.governance import audit
from automate_core.outbox import store
from automate_core.tracing import current_trace_id, trace

if TYPE_CHECKING:
    from automate_core.outbox.store import Lease
    from automate_core.tenancy.models import Tenant

AUDIT_JOB = "datachat.audit"
AUDIT_ACTION = "datachat.query"


def queue(tenant: Tenant, actor: str, data: dict[str, Any]) -> None:
    """Queue the audit row of one query attempt (``data`` names no row value)."""
    payload = {"actor": actor, "target": f"datachat:{data['dataset']}", "data": data}
    if not connection.get_autocommit():
        store.enqueue(AUDIT_JOB, payload, tenant=tenant)
        return
    with transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit = off")
        store.enqueue(AUDIT_JOB, payload, tenant=tenant)


def write(job: Lease) -> None:
    """Append the queued row to the audit log, attributed to the query's tenant and trace."""
    from automate_core.tenancy.models import Tenant

    payload = job.payload
    with trace(job.trace_id or current_trace_id()):
        audit.record(
            AUDIT_ACTION,
            actor=payload["actor"],
            tenant=Tenant.objects.filter(pk=job.tenant_id).first() if job.tenant_id else None,
            target=payload["target"],
            data=payload["data"],
        )
