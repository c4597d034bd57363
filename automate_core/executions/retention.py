"""Execution retention: finished runs (and their StepRuns) are deleted after a retention period.

``AUTOMATE["EXECUTION_RETENTION_DAYS"]`` (default 30; ``None`` keeps runs forever) is measured
from a run's ``finished_at``. The outbox worker's maintenance thread calls :func:`prune_a_few`
(a few batches at a time); ``manage.py automate_prune`` runs :func:`prune` by hand, with
``--dry-run``.

What is guaranteed:

- Only runs whose status is completed, failed or cancelled are deleted, never a queued, running
  or waiting one, however old. Each batch locks the rows it deletes (``FOR UPDATE SKIP LOCKED``)
  and deletes them in the same transaction, so a run being retried or acted on at that moment
  (its row locked) is skipped, not deleted under it.
- Each batch is one short transaction of at most ``batch_size`` runs; nothing grows large.
- A pending outbox job of a deleted run (a stale timer) finds no run and does nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.db import transaction
from django.db.models import QuerySet
from django.utils import timezone

from automate_core.conf import automate_settings
from automate_core.executions.models import Execution, StepRun

logger = logging.getLogger("automate.executions")

#: Batches per maintenance pass; a backlog goes on at the worker's reap interval.
MAINTENANCE_BATCHES = 10

Progress = Callable[[int], None]


@dataclass(frozen=True)
class Pruned:
    """What one :func:`prune` call deleted; ``more``: it stopped at ``max_batches`` with runs
    past retention left."""

    executions: int = 0
    step_runs: int = 0
    more: bool = False


def retention() -> timedelta | None:
    """The retention setting as a duration; None when runs are kept forever."""
    days = automate_settings.EXECUTION_RETENTION_DAYS
    return None if days is None else timedelta(days=days)


def cutoff(older_than: timedelta | None = None) -> datetime | None:
    """Runs that finished before this instant may be pruned; None when nothing may be."""
    age = older_than if older_than is not None else retention()
    return None if age is None else timezone.now() - age


def prunable(older_than: timedelta | None = None) -> QuerySet[Execution]:
    """The finished runs past retention (``older_than``, default the setting), oldest first."""
    before = cutoff(older_than)
    if before is None:
        return Execution.objects.none()
    return _finished_before(before).order_by("finished_at")


def prune(
    older_than: timedelta | None = None,
    *,
    batch_size: int | None = None,
    max_batches: int | None = None,
    progress: Progress | None = None,
) -> Pruned:
    """Delete finished runs past retention with their StepRuns, ``batch_size`` runs per
    transaction, stopping after ``max_batches`` (None: until none is left).

    ``progress`` is called with the number of runs deleted so far after each batch.
    """
    before = cutoff(older_than)
    if before is None:
        return Pruned()
    size = batch_size or automate_settings.EXECUTION_PRUNE_BATCH_SIZE
    executions = step_runs = batches = 0
    while max_batches is None or batches < max_batches:
        runs, steps = _prune_batch(before, size)
        executions, step_runs, batches = executions + runs, step_runs + steps, batches + 1
        if progress is not None and runs:
            progress(executions)
        if runs < size:
            return Pruned(executions, step_runs, more=False)
    return Pruned(executions, step_runs, more=_finished_before(before).exists())


def prune_a_few() -> bool:
    """One maintenance pass: a few batches, so the heartbeats sharing the worker's maintenance
    thread are never held up for long; True when runs are left, to come back soon."""
    pruned = prune(max_batches=MAINTENANCE_BATCHES)
    if pruned.executions:
        logger.info(
            "pruned %d finished execution(s) and %d step run(s) past retention",
            pruned.executions,
            pruned.step_runs,
        )
    return pruned.more


def _finished_before(before: datetime) -> QuerySet[Execution]:
    return Execution.objects.filter(status__in=Execution.FINISHED, finished_at__lt=before)


def _prune_batch(before: datetime, size: int) -> tuple[int, int]:
    with transaction.atomic():
        ids = list(
            _finished_before(before)
            .order_by("finished_at")
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:size]
        )
        if not ids:
            return 0, 0
        steps = StepRun.objects.filter(execution_id__in=ids).delete()[0]
        # The rows are locked by this transaction, so their status cannot have moved since.
        _, deleted = Execution.objects.filter(id__in=ids, status__in=Execution.FINISHED).delete()
        return deleted.get(Execution._meta.label, 0), steps
