"""Celery relay: outbox jobs run on Celery workers under the same lease and fencing rules.

The relay (``manage.py automate_worker --relay``, or :func:`run_relay`) claims due jobs and sends
``(job id, fencing token)`` to :func:`run_outbox_job`. The task adopts the lease only while that
token is current, heartbeats it while the handler runs, and completes the job in the handler's
transaction, exactly like the in-process worker. Durability comes from the lease, not the broker:
if a message is lost or a Celery worker dies, the lease expires, the reaper re-queues the job and
the relay sends it again under a new token; a late message with the old token does nothing.

Celery workers must import this module (``celery -A automate_site worker -I
automate_core.outbox.tasks``) as well as the apps' handler modules (``tasks.py``, imported by the
Celery app's autodiscovery).
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections import Counter
from functools import partial

from celery import shared_task

from automate_core.conf import automate_settings
from automate_core.outbox import store
from automate_core.outbox.store import Lease, LeaseLost
from automate_core.outbox.worker import JobOutcome, LeaseKeeper, Worker, run_job

logger = logging.getLogger("automate.outbox")

SENT = "sent"


@shared_task(name="automate.outbox.run_job", ignore_result=True)
def run_outbox_job(job_id: str, token: int) -> str:
    """Run one relayed job if ``token`` still holds its lease; returns the outcome's name."""
    owner = f"celery:{socket.gethostname()}:{os.getpid()}"
    lease_seconds = automate_settings.OUTBOX_LEASE_SECONDS
    try:
        lease = store.adopt(uuid.UUID(job_id), token, owner=owner, lease_seconds=lease_seconds)
    except LeaseLost:
        logger.info("job %s: token %d is stale, the job was re-queued; skipping", job_id, token)
        return JobOutcome.LOST.value
    with LeaseKeeper(lease_seconds).beating([lease]):
        return run_job(lease).value


def send_to_celery(lease: Lease, *, queue: str | None = None) -> str:
    """Hand a claimed lease to Celery (the relay's dispatch)."""
    run_outbox_job.apply_async(
        args=(str(lease.job_id), lease.token),
        queue=queue or automate_settings.OUTBOX_CELERY_QUEUE,
    )
    return SENT


def run_relay(
    *,
    queue: str | None = None,
    once: bool = False,
    max_jobs: int | None = None,
    batch_size: int | None = None,
    poll_interval: float | None = None,
    worker_id: str | None = None,
    handle_signals: bool = False,
) -> Counter[str]:
    """Claim due jobs and send them to Celery until stopped; returns outcome counts.

    Leases last OUTBOX_RELAY_LEASE_SECONDS so a job can wait in the broker; once a task starts it
    switches to the normal lease and heartbeats.
    """
    relay = Worker(
        concurrency=1,
        batch_size=batch_size,
        lease_seconds=automate_settings.OUTBOX_RELAY_LEASE_SECONDS,
        poll_interval=poll_interval,
        worker_id=worker_id,
        once=once,
        max_jobs=max_jobs,
        dispatch=partial(send_to_celery, queue=queue),
    )
    return relay.run(handle_signals=handle_signals)
