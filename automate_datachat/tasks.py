"""Outbox handlers and maintenance of data chat; the worker imports every app's ``tasks``
module.

``datachat.audit`` appends the audit row of a query (see :mod:`automate_datachat.auditing`);
``datachat.expire_sessions`` deletes expired sessions in batches, in the worker's maintenance
thread.
"""

from __future__ import annotations

from automate_core.outbox import maintenance
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_datachat import auditing, sessions


@outbox_handler(auditing.AUDIT_JOB)
def write_audit(job: Lease) -> None:
    auditing.write(job)


maintenance.register("datachat.expire_sessions", sessions.expire_sessions, every="reap")
