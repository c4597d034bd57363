"""run_job's transaction and the in-process Worker (threads, LISTEN/NOTIFY, timers, stop)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta

import pytest
from django.utils import timezone

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import JobOutcome, Worker, run_job
from tests.automate_core.outbox import handlers
from tests.automate_core.outbox.conftest import take_over

Status = OutboxJob.Status

pytestmark = pytest.mark.usefixtures("record_table")


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.01)


@contextmanager
def running(worker: Worker) -> Iterator[Worker]:
    """Run ``worker`` on a thread for the duration of the block, then stop it."""
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        yield worker
    finally:
        worker.stop()
        thread.join(timeout=10)
        assert not thread.is_alive()


def status_of(job: OutboxJob) -> str:
    return OutboxJob.objects.get(id=job.id).status


@pytest.mark.django_db
def test_handler_writes_commit_with_the_completion():
    job = store.enqueue("test.record", {})
    (lease,) = store.claim_batch("w", 10)

    assert run_job(lease) == JobOutcome.DONE

    assert handlers.records() == {str(job.id): lease.token}
    assert status_of(job) == Status.DONE


@pytest.mark.django_db(transaction=True)
def test_stale_worker_cannot_complete_and_its_handler_writes_roll_back():
    job = store.enqueue("test.record", {"hook": "take-over"})
    (slow,) = store.claim_batch("w-slow", 10)
    thief_lease = []
    # While the slow worker's handler runs, its lease expires and another worker claims the job.
    handlers.HOOKS["take-over"] = lambda lease: thief_lease.append(take_over(lease.job_id))

    assert run_job(slow) == JobOutcome.LOST

    assert handlers.records() == {}  # the stale attempt's insert rolled back
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.lease_owner) == (Status.RUNNING, "thief")
    assert row.fencing_token == thief_lease[0].token == slow.token + 1
    assert row.last_error.startswith("LeaseExpired")  # the failure is not the stale worker's


@pytest.mark.django_db
def test_handler_error_rolls_back_its_writes_and_schedules_a_retry():
    job = store.enqueue("test.record", {"hook": "explode"})
    handlers.HOOKS["explode"] = lambda lease: 1 / 0
    (lease,) = store.claim_batch("w", 10)

    assert run_job(lease) == JobOutcome.RETRY

    assert handlers.records() == {}
    row = OutboxJob.objects.get(id=job.id)
    assert row.status == Status.FAILED
    assert "ZeroDivisionError" in row.last_error
    assert row.available_at > timezone.now()


@pytest.mark.django_db
def test_unknown_kind_fails_with_a_clear_error():
    job = store.enqueue("billing.no_such_handler", {})
    (lease,) = store.claim_batch("w", 10)

    assert run_job(lease) == JobOutcome.RETRY

    error = OutboxJob.objects.get(id=job.id).last_error
    assert "No outbox handler is registered for kind 'billing.no_such_handler'" in error
    assert "@outbox_handler('billing.no_such_handler')" in error


@pytest.mark.django_db(transaction=True)
def test_notify_wakes_an_idle_worker_long_before_the_poll_interval():
    worker = Worker(concurrency=2, poll_interval=60)
    with running(worker):
        assert worker.listening.wait(10)
        wait_for(lambda: worker.idle)
        job = store.enqueue("test.record", {})
        # The next poll is a minute away: only the NOTIFY can get the job done in time.
        wait_for(lambda: status_of(job) == Status.DONE, timeout=10)


@pytest.mark.django_db(transaction=True)
def test_idle_worker_wakes_when_a_scheduled_job_becomes_due():
    worker = Worker(concurrency=1, poll_interval=60)
    with running(worker):
        assert worker.listening.wait(10)
        wait_for(lambda: worker.idle)
        due_at = timezone.now() + timedelta(seconds=1)
        # The NOTIFY wakes the worker early; it must sleep again until the job is due.
        job = store.enqueue("test.record", {}, available_at=due_at)
        wait_for(lambda: status_of(job) == Status.DONE, timeout=10)

    assert OutboxJob.objects.get(id=job.id).started_at >= due_at


@pytest.mark.django_db(transaction=True)
def test_once_drains_due_jobs_and_exits():
    due = [store.enqueue("test.record", {}) for _ in range(25)]
    later = store.enqueue("test.record", {}, available_at=timezone.now() + timedelta(hours=1))

    outcomes = Worker(concurrency=3, batch_size=4, once=True).run()

    assert outcomes == {"done": 25}
    assert set(handlers.records()) == {str(job.id) for job in due}
    assert status_of(later) == Status.QUEUED


@pytest.mark.django_db(transaction=True)
def test_max_jobs_stops_after_that_many_claims():
    for _ in range(10):
        store.enqueue("test.record", {})

    outcomes = Worker(concurrency=2, batch_size=3, max_jobs=4, poll_interval=0.1).run()

    assert outcomes == {"done": 4}
    assert OutboxJob.objects.filter(status=Status.QUEUED).count() == 6


@pytest.mark.django_db(transaction=True)
def test_stop_finishes_the_running_job_and_releases_the_rest_of_the_batch():
    started = threading.Event()
    proceed = threading.Event()

    def block(lease):
        started.set()
        proceed.wait(10)

    handlers.HOOKS["block"] = block
    first = store.enqueue("test.record", {"hook": "block"})
    OutboxJob.objects.filter(id=first.id).update(available_at=timezone.now() - timedelta(1))
    rest = [store.enqueue("test.record", {}) for _ in range(3)]
    worker = Worker(concurrency=1, batch_size=4)

    with running(worker):
        assert started.wait(10)
        worker.stop()
        proceed.set()

    assert worker.outcomes == {"done": 1, "released": 3}
    assert status_of(first) == Status.DONE
    rows = OutboxJob.objects.filter(id__in=[job.id for job in rest])
    assert {(row.status, row.attempts) for row in rows} == {(Status.QUEUED, 0)}


@pytest.mark.django_db(transaction=True)
def test_heartbeats_keep_a_long_job_leased_past_its_lease_time():
    job = store.enqueue("test.record", {"sleep": 2.0})
    # A 0.6 s lease, heartbeats every 0.2 s, and this same worker reaping every 0.1 s.
    worker = Worker(concurrency=1, lease_seconds=0.6, reap_interval=0.1, once=True)

    assert worker.run() == {"done": 1}

    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.attempts, row.fencing_token) == (Status.DONE, 1, 1)
