"""Outbox handlers of data chat; the worker imports every app's ``tasks`` module.

``datachat.audit`` appends the audit row of a query (see :mod:`automate_datachat.auditing`).
"""

from __future__ import annotations

from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_datachat import auditing


@outbox_handler(auditing.AUDIT_JOB)
def write_audit(job: Lease) -> None:
    auditing.write(job)
