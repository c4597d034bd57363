"""The audit trail of data chat queries, written through the outbox.

Every query attempt queues one ``datachat.audit`` job instead of appending to the hash-chained
audit log inline, whose advisory lock, head read and commit cost more than the query itself;
the job's handler appends the ``datachat.query`` row under the query's trace id.

- Inside the caller's transaction the job commits with the caller's work.
- On its own (autocommit) the job, its wake-up and ``synchronous_commit = off`` for its commit
  go out as one prepared statement: one round trip, no ``BEGIN``/``COMMIT``. The row is written
  before the statement returns and survives a server process crash, but a crash of the whole
  database host can lose the jobs of the last few hundred milliseconds (never part of one).
  The queries themselves only read.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db import connection

from automate_core import prepared
from automate_core.conf import automate_settings
from automate_core.governance import audit
from automate_core.outbox import store
from automate_core.tracing import current_trace_id, trace

if TYPE_CHECKING:
    from automate_core.outbox.store import Lease
    from automate_core.tenancy.models import Tenant

AUDIT_JOB = "datachat.audit"
AUDIT_ACTION = "datachat.query"

# set_config(..., true) lasts to the end of the statement's own (implicit) transaction, whose
# commit is the one it relaxes; the INSERT reads from it so that it is evaluated.
_QUEUE_ALONE_SQL = f"""
WITH relaxed AS (SELECT set_config('synchronous_commit', 'off', true)),
job AS ({store.INSERT_JOB_SQL.format(source=store.JOB_SELECT + " FROM relaxed")} RETURNING 1)
SELECT pg_notify(%s, '') FROM job
"""  # noqa: S608 (constants)


def queue(tenant: Tenant, actor: str, data: dict[str, Any]) -> None:
    """Queue the audit row of one query attempt (``data`` names no row value)."""
    payload = {"actor": actor, "target": f"datachat:{data['dataset']}", "data": data}
    if not connection.get_autocommit():
        store.enqueue(AUDIT_JOB, payload, tenant=tenant)
        return
    job = store.new_job(AUDIT_JOB, payload, tenant_id=tenant.pk, trace_id=current_trace_id() or "")
    with prepared.cursor() as cursor:
        cursor.execute(
            _QUEUE_ALONE_SQL, [*store.job_params(job), automate_settings.OUTBOX_NOTIFY_CHANNEL]
        )


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
