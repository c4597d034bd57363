"""Retention: finished runs past EXECUTION_RETENTION_DAYS go with their step runs; others stay."""

from __future__ import annotations

import io
import threading
import time
from datetime import timedelta

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, transaction
from django.utils import timezone

from automate_core.executions import retention
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.worker import Worker
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine

Status = Execution.Status


@pytest.fixture(autouse=True)
def thirty_days(settings):
    settings.AUTOMATE = {**getattr(settings, "AUTOMATE", {}), "EXECUTION_RETENTION_DAYS": 30}


def finished(days_ago: float, status: str = Status.COMPLETED) -> Execution:
    """A three-step run driven to completion, then aged (and given ``status``)."""
    run = engine.start("three-steps")
    run_until_idle()
    Execution.objects.filter(pk=run.pk).update(
        status=status, finished_at=timezone.now() - timedelta(days=days_ago)
    )
    return run


def exists(run: Execution) -> bool:
    return Execution.objects.filter(pk=run.pk).exists()


@pytest.mark.django_db
def test_finished_runs_past_retention_are_deleted_with_their_step_runs():
    old = [finished(40, status) for status in (Status.COMPLETED, Status.FAILED, Status.CANCELLED)]
    recent = finished(5)

    pruned = retention.prune()

    assert (pruned.executions, pruned.step_runs, pruned.more) == (3, 9, False)
    assert not any(exists(run) for run in old)
    assert not StepRun.objects.filter(execution_id__in=[run.pk for run in old]).exists()
    assert exists(recent) and StepRun.objects.filter(execution=recent).count() == 3


@pytest.mark.django_db
def test_runs_that_are_not_finished_are_never_pruned_however_old():
    waiting = engine.start("approval", user="a")
    run_until_idle()
    queued = engine.start("three-steps")
    running = engine.start("three-steps")
    long_ago = timezone.now() - timedelta(days=400)
    Execution.objects.filter(pk=running.pk).update(status=Status.RUNNING)
    # Even a stray finished_at on a live run does not make it prunable.
    Execution.objects.filter(pk__in=[waiting.pk, queued.pk, running.pk]).update(
        finished_at=long_ago, created_at=long_ago
    )

    assert retention.prune(timedelta(0)).executions == 0
    assert all(exists(run) for run in (waiting, queued, running))
    assert Execution.objects.get(pk=waiting.pk).status == Status.WAITING


@pytest.mark.django_db
def test_retention_none_keeps_finished_runs_forever(settings):
    settings.AUTOMATE = {**settings.AUTOMATE, "EXECUTION_RETENTION_DAYS": None}
    run = finished(10_000)

    assert retention.prune() == retention.Pruned()
    assert exists(run)


@pytest.mark.django_db
def test_pruning_stops_after_max_batches_and_says_more_is_left():
    runs = [finished(40 + n) for n in range(5)]

    first = retention.prune(batch_size=2, max_batches=1)

    assert (first.executions, first.more) == (2, True)
    # Oldest first.
    assert not exists(runs[4]) and not exists(runs[3]) and exists(runs[0])
    rest = retention.prune(batch_size=2)
    assert (rest.executions, rest.more) == (3, False)


@pytest.mark.django_db(transaction=True)
def test_a_run_locked_by_another_transaction_is_skipped_not_deleted():
    locked, free = finished(40), finished(41)
    holding, release = threading.Event(), threading.Event()

    def hold_lock():
        try:
            with transaction.atomic():
                Execution.objects.select_for_update().get(pk=locked.pk)
                holding.set()
                release.wait(10)
        finally:
            connection.close()

    thread = threading.Thread(target=hold_lock)
    thread.start()
    try:
        assert holding.wait(10)
        assert retention.prune().executions == 1
    finally:
        release.set()
        thread.join(10)
    assert exists(locked) and not exists(free)


@pytest.mark.django_db(transaction=True)
def test_the_worker_prunes_finished_runs_in_its_maintenance():
    old, recent = finished(40), finished(1)
    worker = Worker(concurrency=1, poll_interval=60, listen=False)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while exists(old):
            assert time.monotonic() < deadline, "the worker did not prune the old run"
            time.sleep(0.05)
    finally:
        worker.stop()
        thread.join(10)
    assert exists(recent)


def run_prune(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command("automate_prune", *args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


@pytest.mark.django_db
def test_prune_command_dry_run_counts_and_deletes_nothing():
    old = [finished(40), finished(50, Status.FAILED)]
    finished(1)

    out, _ = run_prune("--dry-run")

    assert out.strip() == (
        "Dry run: would delete 2 execution(s) and 6 step run(s) finished more than 30 days ago "
        "(completed 1, failed 1)."
    )
    assert all(exists(run) for run in old)


@pytest.mark.django_db
def test_prune_command_deletes_and_draws_a_progress_bar():
    old = [finished(40 + n) for n in range(3)]
    recent = finished(1)

    out, err = run_prune("--batch-size", "1")

    assert "Deleted 3 execution(s) and 9 step run(s) finished more than 30 days ago." in out
    assert err.splitlines() == [
        f"[{'#' * 10}{'.' * 20}]  33%  1/3 runs",
        f"[{'#' * 20}{'.' * 10}]  67%  2/3 runs",
        f"[{'#' * 30}] 100%  3/3 runs",
    ]
    assert not any(exists(run) for run in old) and exists(recent)


@pytest.mark.django_db
def test_prune_command_days_overrides_the_setting(settings):
    settings.AUTOMATE = {**settings.AUTOMATE, "EXECUTION_RETENTION_DAYS": None}
    run = finished(3)

    out, _ = run_prune("--days", "2", "--verbosity", "0")

    assert "Deleted 1 execution(s)" in out and "2 days ago" in out
    assert not exists(run)


@pytest.mark.django_db
def test_prune_command_with_retention_none_says_runs_are_kept(settings):
    settings.AUTOMATE = {**settings.AUTOMATE, "EXECUTION_RETENTION_DAYS": None}
    run = finished(3)

    out, _ = run_prune()

    assert "kept forever" in out and exists(run)


@pytest.mark.django_db
def test_prune_command_refuses_a_negative_retention():
    with pytest.raises(CommandError, match="--days must be 0 or more"):
        run_prune("--days", "-1")
