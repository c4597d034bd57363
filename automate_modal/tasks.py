"""Outbox handlers of the Modal app; the worker imports every app's ``tasks`` module.

``modal.reconcile`` polls one attempt of a job (or spawns a retry whose time has come): the
fallback that finds a result when no completion callback arrives. Each poll that finds the call
still running queues the next one, backing off up to ``POLL_MAX_SECONDS``; a poll that cannot
reach the backend fails the outbox job, which retries it.
"""

from __future__ import annotations

from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_modal.services import RECONCILE_JOB, reconcile


@outbox_handler(RECONCILE_JOB)
def reconcile_job(job: Lease) -> None:
    payload = job.payload
    reconcile(payload["job"], attempt=int(payload["attempt"]), polls=int(payload.get("polls", 0)))
