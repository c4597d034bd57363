"""Outbox handlers of the Modal app; the worker imports every app's ``tasks`` module.

``modal.spawn`` spawns a planned attempt in two transactions: the first commits the attempt's
budget hold, its intent and its orphan check; the second locks the outbox job under its lease
(so the reaper skips it however long the spawn takes), spawns and records the call id. A worker
that dies in between leaves an intent that the orphan check (the same job kind, queued for
``ORPHAN_AFTER_SECONDS`` later) resolves: see :func:`automate_modal.services.intend`.

``modal.reconcile`` polls one attempt of a job: the fallback that finds a result when no
completion callback arrives. Each poll that finds the call still running queues the next one,
backing off up to ``POLL_MAX_SECONDS``; a poll that cannot reach the backend fails the outbox
job, which retries it.
"""

from __future__ import annotations

from django.db import transaction

from automate_core.outbox import store
from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease
from automate_modal.services import (
    RECONCILE_JOB,
    SPAWN_JOB,
    intend,
    reconcile,
    spawn_intended,
)


@outbox_handler(SPAWN_JOB, commits=True)
def spawn_job(job: Lease) -> None:
    payload = job.payload
    with transaction.atomic():
        attempt = intend(payload["job"], int(payload["attempt"]))
        if attempt is None:
            store.complete(job)
            return
        store.advance(job, {**payload, "attempt": attempt})
    with transaction.atomic():
        store.advance(job, {**payload, "attempt": attempt})  # LeaseLost: another worker has it
        spawn_intended(payload["job"], attempt)
        store.complete(job)


@outbox_handler(RECONCILE_JOB)
def reconcile_job(job: Lease) -> None:
    payload = job.payload
    reconcile(payload["job"], attempt=int(payload["attempt"]), polls=int(payload.get("polls", 0)))
