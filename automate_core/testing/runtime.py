"""Run outbox work synchronously in tests: ``run_until_idle()`` and ``fire_timers()``."""

from __future__ import annotations

from django.utils import timezone

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import run_job


def run_until_idle(max_jobs: int = 10_000) -> int:
    """Claim and run due jobs in this process until none are due; returns how many ran."""
    ran = 0
    while ran < max_jobs:
        leases = store.claim_batch("test-runner", limit=50)
        if not leases:
            return ran
        for lease in leases:
            run_job(lease)
            ran += 1
    raise RuntimeError(f"still busy after {max_jobs} jobs: is a workflow looping forever?")


def fire_timers(*, kinds: tuple[str, ...] = ()) -> int:
    """Make every queued future job due now, as if its time had come. Returns how many."""
    due = OutboxJob.objects.filter(status__in=OutboxJob.CLAIMABLE, available_at__gt=timezone.now())
    if kinds:
        due = due.filter(kind__in=kinds)
    return due.update(available_at=timezone.now())
