"""Outbox runtime on the embedded Postgres, beside the raw ``FOR UPDATE SKIP LOCKED`` ceiling.

Three measurements, in one process, on one database (``automate_bench``, created next to the
development database; its outbox table is emptied before each phase):

* ``drain``: enqueue N no-op jobs, then time ``Worker(once=True)`` draining them: jobs/s.
* ``latency``: a producer enqueues (one commit per job, so one NOTIFY each) at half the drain rate
  while a worker waits on LISTEN; enqueue→done latency p50/p99 from each job's ``created_at``
  and ``finished_at``.
* ``ceiling``: the same number of plain psycopg connections, each looping over one transaction:
  ``SELECT id ... FOR UPDATE SKIP LOCKED LIMIT b`` then ``UPDATE ... SET status = 'done'``, on
  the same table and indexes. That is the least work a Postgres queue can do per job; the ratio
  outbox/ceiling says what leases, fencing, the separate completion transaction and Django cost.

Run: ``.venv/bin/python bench/bench_outbox.py [--jobs 5000] [--concurrency 4] [--batch-size 10]``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import threading
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

BENCH_DB = "automate_bench"


from bench.database import setup_django  # noqa: E402

setup_django(BENCH_DB)

import psycopg  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.db import connection, transaction  # noqa: E402

from automate_core.outbox import store  # noqa: E402
from automate_core.outbox.handlers import outbox_handler  # noqa: E402
from automate_core.outbox.models import OutboxJob  # noqa: E402
from automate_core.outbox.worker import Worker  # noqa: E402

TABLE = OutboxJob._meta.db_table


@outbox_handler("bench.noop")
def noop(job: store.Lease) -> None:
    pass


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"TRUNCATE {TABLE}")
        cursor.execute(f"VACUUM ANALYZE {TABLE}")


def enqueue_many(count: int) -> None:
    with transaction.atomic():
        for _ in range(count):
            store.enqueue("bench.noop", {})


def drain(jobs: int, concurrency: int, batch_size: int) -> float:
    reset()
    enqueue_many(jobs)
    started = time.perf_counter()
    outcomes = Worker(concurrency=concurrency, batch_size=batch_size, once=True).run()
    elapsed = time.perf_counter() - started
    assert outcomes == {"done": jobs}, outcomes
    return jobs / elapsed


def latency(jobs: int, rate: float, concurrency: int, batch_size: int) -> tuple[float, float]:
    reset()
    worker = Worker(concurrency=concurrency, batch_size=batch_size, poll_interval=1.0)
    thread = threading.Thread(target=worker.run)
    thread.start()
    worker.listening.wait(10)
    started = time.perf_counter()
    for n in range(jobs):
        store.enqueue("bench.noop", {})  # autocommit: one transaction and NOTIFY per job
        pause = started + (n + 1) / rate - time.perf_counter()
        if pause > 0:
            time.sleep(pause)
    while OutboxJob.objects.filter(status=OutboxJob.Status.DONE).count() < jobs:
        time.sleep(0.05)
    worker.stop()
    thread.join()
    waits = sorted(
        (finished - created).total_seconds() * 1000
        for created, finished in OutboxJob.objects.values_list("created_at", "finished_at")
    )
    return statistics.median(waits), waits[min(len(waits) - 1, int(len(waits) * 0.99))]


def ceiling(jobs: int, connections: int, batch_size: int) -> float:
    """Raw claim+update transactions per second, straight through psycopg."""
    reset()
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {TABLE} (id, created_at, updated_at, kind, payload, status, attempts, "
            "max_attempts, available_at, lease_owner, fencing_token, last_error, trace_id) "
            "SELECT gen_random_uuid(), now(), now(), 'bench.raw', '{}', 'queued', 0, 10, now(), "
            "'', 0, '', '' FROM generate_series(1, %s)",
            [jobs],
        )
        cursor.execute(f"ANALYZE {TABLE}")
    conninfo = os.environ["DATABASE_URL"]
    claim = (
        f"SELECT id FROM {TABLE} WHERE status IN ('queued', 'failed') "
        "AND available_at <= statement_timestamp() ORDER BY available_at "
        "LIMIT %s FOR UPDATE SKIP LOCKED"
    )
    finish = f"UPDATE {TABLE} SET status = 'done', finished_at = now() WHERE id = ANY(%s)"
    counts = [0] * connections

    def loop(slot: int) -> None:
        with psycopg.connect(conninfo) as conn:
            while True:
                with conn.transaction():
                    ids = [row[0] for row in conn.execute(claim, [batch_size]).fetchall()]
                    if not ids:
                        return
                    conn.execute(finish, [ids])
                counts[slot] += 1

    threads = [threading.Thread(target=loop, args=(n,)) for n in range(connections)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--jobs", type=int, default=5000)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--latency-jobs", type=int, default=1500)
    args, _ = parser.parse_known_args()  # `python -m bench outbox` passes its filter words
    c, b, n = args.concurrency, args.batch_size, args.jobs

    call_command("migrate", verbosity=0)
    with connection.cursor() as cursor:
        cursor.execute("SHOW server_version")
        version = cursor.fetchone()[0]
    print(f"Postgres {version} at {connection.settings_dict['OPTIONS'].get('host') or 'tcp'}")
    print(f"{os.cpu_count()} CPUs; {c} threads/connections; batch {b}; no-op handler")

    drain(min(n, 500), c, b)  # warm-up: connections, caches, the table's first pages
    throughput = drain(n, c, b)
    print(f"outbox drain      {n} jobs: {throughput:8.0f} jobs/s")
    rate = max(10.0, throughput / 2)
    p50, p99 = latency(args.latency_jobs, rate, c, b)
    print(
        f"outbox latency    {args.latency_jobs} jobs at {rate:.0f}/s, enqueue->done: "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
    )
    raw_batch = ceiling(n, c, b)
    raw_single = ceiling(n, c, 1)
    print(
        f"ceiling batch {b:<3} raw SKIP LOCKED claim+update: {raw_batch:8.0f} tx/s = "
        f"{raw_batch * b:8.0f} jobs/s"
    )
    print(
        f"ceiling batch 1   raw SKIP LOCKED claim+update: {raw_single:8.0f} tx/s = "
        f"{raw_single:8.0f} jobs/s"
    )
    print(
        f"ratio outbox / raw (batch {b}): {throughput / (raw_batch * b):.2f}   "
        f"outbox / raw (batch 1): {throughput / raw_single:.2f}"
    )
    reset()


if __name__ == "__main__":
    main()
