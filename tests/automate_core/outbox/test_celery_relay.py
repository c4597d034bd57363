"""The Celery relay keeps the lease and fencing guarantees of the in-process worker.

The fast tests run Celery eagerly (the task executes inside ``apply_async``); the e2e test runs a
real Celery worker thread over the embedded Redis, on a queue of its own.
"""

from __future__ import annotations

import threading
import time
import uuid

import pytest

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.tasks import run_outbox_job, run_relay, send_to_celery
from automate_site.celery import app as celery_app
from tests.automate_core.outbox import handlers
from tests.automate_core.outbox.conftest import take_over

Status = OutboxJob.Status

pytestmark = pytest.mark.usefixtures("record_table")


@pytest.fixture
def celery_eager():
    saved = celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates
    celery_app.conf.task_always_eager = True
    celery_app.conf.task_eager_propagates = True
    yield
    celery_app.conf.task_always_eager, celery_app.conf.task_eager_propagates = saved


@pytest.mark.django_db(transaction=True)
def test_relay_runs_jobs_through_the_celery_task(celery_eager):
    jobs = [store.enqueue("test.record", {}) for _ in range(5)]

    assert run_relay(once=True) == {"sent": 5}

    rows = OutboxJob.objects.filter(id__in=[job.id for job in jobs])
    assert {row.status for row in rows} == {Status.DONE}
    assert all(row.lease_owner.startswith("celery:") for row in rows)
    assert handlers.records() == {str(row.id): row.fencing_token for row in rows}


@pytest.mark.django_db(transaction=True)
def test_relayed_task_with_a_stale_token_does_not_run_the_handler(celery_eager):
    job = store.enqueue("test.record", {})
    (relayed,) = store.claim_batch("relay", 10)
    current = take_over(job.id)  # the message sat in the broker past the lease

    outcome = run_outbox_job.apply(args=[str(job.id), relayed.token]).get()

    assert outcome == "lost"
    assert handlers.records() == {}
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.lease_owner, row.fencing_token) == (
        Status.RUNNING,
        "thief",
        current.token,
    )


@pytest.mark.django_db(transaction=True)
def test_relayed_job_taken_over_mid_run_rolls_back_its_writes(celery_eager):
    job = store.enqueue("test.record", {"hook": "take-over"})
    handlers.HOOKS["take-over"] = lambda lease: take_over(lease.job_id)
    (relayed,) = store.claim_batch("relay", 10)

    send_to_celery(relayed)

    assert handlers.records() == {}
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.lease_owner, row.fencing_token) == (
        Status.RUNNING,
        "thief",
        relayed.token + 1,
    )


@pytest.mark.e2e
@pytest.mark.django_db(transaction=True)
def test_relay_and_a_real_celery_worker_complete_each_job_once():
    from celery.contrib.testing.worker import start_worker
    from celery.signals import task_postrun

    queue = f"outbox-test-{uuid.uuid4().hex[:8]}"
    jobs = [store.enqueue("test.record", {}) for _ in range(40)]
    relay = threading.Thread(target=run_relay, kwargs={"queue": queue, "once": True})
    results: dict[str, str] = {}

    def collect(task_id: str, retval: object, **_: object) -> None:
        results[task_id] = str(retval)

    task_postrun.connect(collect, weak=False)
    try:
        with start_worker(
            celery_app, pool="solo", perform_ping_check=False, queues=[queue], loglevel="WARNING"
        ):
            relay.start()
            relay.join(timeout=30)
            wait_until(lambda: len(results) == len(jobs))
            # A late duplicate of a message, for a job already done, changes nothing.
            first = OutboxJob.objects.get(id=jobs[0].id)
            late = run_outbox_job.apply_async(
                args=[str(first.id), first.fencing_token], queue=queue
            )
            wait_until(lambda: late.id in results)
    finally:
        task_postrun.disconnect(collect)

    assert sorted(results.values()) == ["done"] * len(jobs) + ["lost"]
    rows = OutboxJob.objects.all()
    assert {row.status for row in rows} == {Status.DONE}
    assert handlers.records() == {str(row.id): row.fencing_token for row in rows}


def wait_until(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.02)
