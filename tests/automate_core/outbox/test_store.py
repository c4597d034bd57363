"""The store's guarantees, one per test, against the embedded Postgres."""

from __future__ import annotations

import random
import threading
from datetime import timedelta

import pytest
from django.db import connection, connections, transaction
from django.db.models.functions import Now
from django.utils import timezone

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.store import LeaseLost
from automate_core.outbox.worker import run_job

Status = OutboxJob.Status


def expire(job_id: object) -> None:
    OutboxJob.objects.filter(id=job_id).update(lease_expires_at=Now() - timedelta(seconds=1))


def make_due(job_id: object) -> None:
    OutboxJob.objects.filter(id=job_id).update(available_at=Now())


@pytest.mark.django_db(transaction=True)
def test_enqueue_inside_rolled_back_transaction_leaves_nothing(raw_connection):
    listener = raw_connection()
    listener.execute("LISTEN automate_outbox")

    with pytest.raises(RuntimeError), transaction.atomic():
        store.enqueue("test.noop", {"n": 1})
        raise RuntimeError("caller fails after enqueueing")

    assert not OutboxJob.objects.exists()
    assert list(listener.notifies(timeout=0.2)) == []


@pytest.mark.django_db(transaction=True)
def test_enqueue_wakes_listeners_only_when_the_transaction_commits(raw_connection):
    listener = raw_connection()
    listener.execute("LISTEN automate_outbox")

    with transaction.atomic():
        store.enqueue("test.noop", {})
        store.enqueue("test.noop", {})
        assert list(listener.notifies(timeout=0.1)) == []

    notes = list(listener.notifies(timeout=1.0, stop_after=1))
    assert [n.channel for n in notes] == ["automate_outbox"]


@pytest.mark.django_db
def test_idempotency_key_dedupes_enqueue():
    first = store.enqueue("test.noop", {"v": 1}, idempotency_key="exec-1:step-a")
    again = store.enqueue("test.noop", {"v": 2}, idempotency_key="exec-1:step-a")
    other = store.enqueue("test.noop", {"v": 3}, idempotency_key="exec-1:step-b")

    assert again.pk == first.pk
    assert again.payload == {"v": 1}
    assert other.pk != first.pk
    assert OutboxJob.objects.count() == 2


@pytest.mark.django_db
def test_jobs_without_idempotency_key_are_never_deduplicated():
    store.enqueue("test.noop", {})
    store.enqueue("test.noop", {})
    assert OutboxJob.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_claim_skips_rows_locked_by_another_connection(raw_connection):
    jobs = [store.enqueue("test.noop", {"n": n}) for n in range(5)]
    locked = {jobs[0].id, jobs[1].id}
    other = raw_connection()
    other.autocommit = False
    other.execute(
        "SELECT id FROM automate_core_outboxjob WHERE id = ANY(%s) FOR UPDATE",
        [list(locked)],
    )

    leases = store.claim_batch("w1", 10)

    assert {lease.job_id for lease in leases} == {job.id for job in jobs} - locked
    other.rollback()
    assert {lease.job_id for lease in store.claim_batch("w2", 10)} == locked


@pytest.mark.django_db(transaction=True)
def test_concurrent_claims_never_hand_out_the_same_job():
    with transaction.atomic():
        for n in range(200):
            store.enqueue("test.noop", {"n": n})
    claimed: list[list] = [[] for _ in range(4)]

    def claim_all(slot: int) -> None:
        try:
            while leases := store.claim_batch(f"w{slot}", 7):
                claimed[slot].extend(lease.job_id for lease in leases)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=claim_all, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [job_id for ids in claimed for job_id in ids]
    assert len(every) == len(set(every)) == 200


@pytest.mark.django_db
def test_claim_ignores_jobs_not_yet_available():
    later = store.enqueue("test.noop", {}, available_at=timezone.now() + timedelta(minutes=5))
    due = store.enqueue("test.noop", {}, available_at=timezone.now() - timedelta(seconds=1))

    assert [lease.job_id for lease in store.claim_batch("w", 10)] == [due.id]
    assert OutboxJob.objects.get(id=later.id).status == Status.QUEUED


@pytest.mark.django_db
def test_claim_hands_out_the_longest_waiting_jobs_first():
    now = timezone.now()
    newer = store.enqueue("test.noop", {}, available_at=now - timedelta(seconds=1))
    older = store.enqueue("test.noop", {}, available_at=now - timedelta(seconds=60))

    assert [lease.job_id for lease in store.claim_batch("w", 1)] == [older.id]
    assert [lease.job_id for lease in store.claim_batch("w", 1)] == [newer.id]


@pytest.mark.django_db
def test_each_claim_bumps_the_fencing_token_and_counts_an_attempt():
    job = store.enqueue("test.noop", {"k": "v"}, trace_id="trace-123456")
    (first,) = store.claim_batch("w1", 10, lease_seconds=30)
    store.fail(first, "transient", retry_in=0)
    (second,) = store.claim_batch("w2", 10, lease_seconds=30)

    assert (first.token, first.attempt) == (1, 1)
    assert (second.token, second.attempt) == (2, 2)
    assert second.payload == {"k": "v"}
    assert second.trace_id == "trace-123456"
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.lease_owner, row.fencing_token) == (Status.RUNNING, "w2", 2)
    assert row.lease_expires_at > timezone.now() + timedelta(seconds=25)


@pytest.mark.django_db
def test_claim_query_is_an_index_scan():
    now = timezone.now()
    OutboxJob.objects.bulk_create(
        OutboxJob(
            kind="test.noop",
            status=Status.DONE if n % 10 else Status.QUEUED,
            available_at=now - timedelta(seconds=n),
        )
        for n in range(5000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE automate_core_outboxjob")
        cursor.execute(
            "EXPLAIN " + store._CLAIM_SQL, {"limit": 10, "owner": "w", "lease_seconds": 30}
        )
        plan = "\n".join(row[0] for row in cursor.fetchall())

    assert "Index Scan using outbox_claimable_idx" in plan, plan
    assert "Seq Scan" not in plan, plan


@pytest.mark.django_db
def test_expired_lease_is_reclaimed_by_another_worker():
    job = store.enqueue("test.noop", {})
    (crashed,) = store.claim_batch("w-crashed", 10)
    expire(job.id)

    assert store.reap_expired() == 1
    (retaken,) = store.claim_batch("w-alive", 10)

    assert retaken.job_id == job.id
    assert retaken.token == crashed.token + 1
    row = OutboxJob.objects.get(id=job.id)
    assert row.lease_owner == "w-alive"
    assert "LeaseExpired: the lease of w-crashed expired" in row.last_error


@pytest.mark.django_db
def test_reaper_leaves_unexpired_leases_alone():
    job = store.enqueue("test.noop", {})
    store.claim_batch("w", 10, lease_seconds=30)

    assert store.reap_expired() == 0
    assert OutboxJob.objects.get(id=job.id).status == Status.RUNNING


@pytest.mark.django_db
def test_expired_lease_on_the_last_attempt_goes_dead():
    job = store.enqueue("test.noop", {}, max_attempts=1)
    store.claim_batch("w", 10)
    expire(job.id)

    store.reap_expired()

    row = OutboxJob.objects.get(id=job.id)
    assert row.status == Status.DEAD
    assert row.finished_at is not None
    assert row.last_error.startswith("LeaseExpired")


@pytest.mark.django_db
def test_heartbeat_extends_only_leases_whose_token_matches():
    kept_job = store.enqueue("test.noop", {})
    lost_job = store.enqueue("test.noop", {})
    kept, lost = sorted(
        store.claim_batch("w1", 10, lease_seconds=5), key=lambda lease: lease.job_id
    )
    if kept.job_id != kept_job.id:
        kept, lost = lost, kept
    expire(lost_job.id)
    store.reap_expired()
    store.claim_batch("w2", 10, lease_seconds=5)

    taken_over = store.heartbeat([kept, lost], lease_seconds=120)

    assert taken_over == {lost_job.id}
    rows = {row.id: row for row in OutboxJob.objects.all()}
    assert rows[kept_job.id].lease_expires_at > timezone.now() + timedelta(seconds=100)
    assert rows[lost_job.id].lease_expires_at < timezone.now() + timedelta(seconds=10)
    assert rows[lost_job.id].lease_owner == "w2"


@pytest.mark.django_db
def test_heartbeat_does_not_report_a_job_its_own_lease_finished_as_lost():
    store.enqueue("test.noop", {})
    store.enqueue("test.noop", {})
    first, second = store.claim_batch("w", 10)
    store.complete(first)

    assert store.heartbeat([first, second]) == set()


@pytest.mark.django_db
def test_stale_lease_cannot_complete_or_fail():
    job = store.enqueue("test.noop", {})
    (stale,) = store.claim_batch("w1", 10)
    expire(job.id)
    store.reap_expired()
    (current,) = store.claim_batch("w2", 10)

    with pytest.raises(LeaseLost):
        store.complete(stale)
    with pytest.raises(LeaseLost):
        store.fail(stale, "late failure")

    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.fencing_token, row.lease_owner) == (Status.RUNNING, current.token, "w2")
    store.complete(current)
    assert OutboxJob.objects.get(id=job.id).status == Status.DONE


@pytest.mark.django_db
def test_failed_attempt_is_retried_after_exponential_backoff():
    # Settings in conftest: base 2 s, jitter 0.25, so retry n waits 2**n s, up to 25 % less.
    job = store.enqueue("test.noop", {}, max_attempts=5)
    waits = []
    for attempt in (1, 2, 3):
        (lease,) = store.claim_batch("w", 10)
        assert lease.attempt == attempt
        before = timezone.now()
        assert store.fail(lease, f"error {attempt}") == Status.FAILED
        row = OutboxJob.objects.get(id=job.id)
        assert row.status == Status.FAILED
        assert row.last_error == f"error {attempt}"
        assert store.claim_batch("w", 10) == []  # not before the backoff is over
        waits.append((row.available_at - before).total_seconds())
        make_due(job.id)

    for attempt, wait in zip((1, 2, 3), waits, strict=True):
        full = 2.0 * 2 ** (attempt - 1)
        assert 0.75 * full - 0.5 <= wait <= full + 0.5, (attempt, waits)


def test_backoff_delay_doubles_up_to_the_cap_with_bounded_jitter():
    rng = random.Random(7)
    for attempt, full in [(1, 1.0), (2, 2.0), (3, 4.0), (8, 128.0), (20, 300.0), (500, 300.0)]:
        delays = [
            store.backoff_delay(attempt, base=1.0, cap=300.0, jitter=0.2, rng=rng)
            for _ in range(50)
        ]
        assert all(0.8 * full <= delay <= full for delay in delays), (attempt, delays)
        assert len(set(delays)) > 1  # jittered
    assert store.backoff_delay(3, base=1.0, cap=300.0, jitter=0.0) == 4.0


@pytest.mark.django_db
def test_job_is_dead_with_its_last_error_after_max_attempts():
    job = store.enqueue("test.fail", {"message": "provider down"}, max_attempts=3)
    outcomes = []
    for _ in range(3):
        (lease,) = store.claim_batch("w", 10)
        outcomes.append(run_job(lease))
        make_due(job.id)

    assert outcomes == ["retry", "retry", "dead"]
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.attempts) == (Status.DEAD, 3)
    assert row.finished_at is not None
    assert "RuntimeError: provider down" in row.last_error
    assert store.claim_batch("w", 10) == []


@pytest.mark.django_db
def test_redrive_puts_dead_jobs_back_with_fresh_attempts():
    dead = store.enqueue("test.fail", {}, max_attempts=1)
    done = store.enqueue("test.noop", {})
    for lease in store.claim_batch("w", 10):
        run_job(lease)

    assert store.redrive([dead.id, done.id]) == 1

    row = OutboxJob.objects.get(id=dead.id)
    assert (row.status, row.attempts, row.finished_at) == (Status.QUEUED, 0, None)
    assert "RuntimeError" in row.last_error  # kept for the record
    assert OutboxJob.objects.get(id=done.id).status == Status.DONE
    assert [lease.job_id for lease in store.claim_batch("w", 10)] == [dead.id]


@pytest.mark.django_db
def test_prune_deletes_finished_jobs_past_retention_and_keeps_the_rest():
    old_done = store.enqueue("test.noop", {})
    new_done = store.enqueue("test.noop", {})
    old_dead = store.enqueue("test.fail", {}, max_attempts=1)
    queued = store.enqueue("test.noop", {}, available_at=timezone.now() + timedelta(days=30))
    for lease in store.claim_batch("w", 10):
        run_job(lease)
    long_ago = timezone.now() - timedelta(days=10)
    OutboxJob.objects.filter(id__in=[old_done.id, old_dead.id]).update(finished_at=long_ago)

    assert store.prune(timedelta(days=7)) == 1
    assert set(OutboxJob.objects.values_list("id", flat=True)) == {
        new_done.id,
        old_dead.id,
        queued.id,
    }
    assert store.prune(timedelta(days=7), dead_older_than=timedelta(days=7)) == 1
    assert not OutboxJob.objects.filter(id=old_dead.id).exists()


@pytest.mark.django_db
def test_release_gives_back_unstarted_jobs_without_counting_an_attempt():
    job = store.enqueue("test.noop", {})
    (lease,) = store.claim_batch("w", 10)

    assert store.release([lease]) == 1

    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.attempts) == (Status.QUEUED, 0)
    with pytest.raises(LeaseLost):
        store.complete(lease)
    assert store.claim_batch("w", 10)[0].token == lease.token + 1


@pytest.mark.django_db
def test_next_due_in_reports_the_earliest_scheduled_job():
    assert store.next_due_in() is None
    store.enqueue("test.noop", {}, available_at=timezone.now() + timedelta(seconds=90))
    store.enqueue("test.noop", {}, available_at=timezone.now() + timedelta(seconds=30))

    assert 25 < store.next_due_in() <= 30
    store.enqueue("test.noop", {})
    assert store.next_due_in() == 0.0
