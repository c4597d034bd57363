"""End to end on the embedded Postgres: events -> a 3-step no-op workflow -> completed.

* ``throughput``: ingest N events (one commit each), then time a default ``Worker(once=True)``
  running every event, start and step job to completion: completed runs/s, beside the outbox's
  own no-op drain rate on the same database. A run is 2 outbox jobs: the event's, and one step
  job that runs the 3 chained steps (handed straight to the worker that started the run).
* ``latency``: at low load, a listening worker runs events ingested one at a time; ingest ->
  completed p50/p99 from the event's ``created_at`` and the run's ``finished_at``.

Uses the ``automate_bench`` database of bench_outbox.py. Run:
``.venv/bin/python bench/bench_engine.py [--events 2000]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import bench_outbox  # sets up Django on the automate_bench database

# isort: split
from django.core.management import call_command
from django.db import connection

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import Worker
from automate_core.workflows.code import event_workflow, step


@event_workflow("bench.tick", name="bench-three-steps")
class BenchThreeSteps:
    @step(start=True)
    def one(self):
        return None

    @step()
    def two(self):
        return None

    @step()
    def three(self):
        return None


def reset() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE automate_core_steprun, automate_core_execution, automate_core_event, "
            "automate_core_outboxjob CASCADE"
        )


def throughput(events: int) -> float:
    reset()
    for i in range(events):
        ingestor.ingest("bench.tick", {"i": i})
    started = time.perf_counter()
    Worker(once=True).run()
    elapsed = time.perf_counter() - started
    done = Execution.objects.filter(status=Execution.Status.COMPLETED).count()
    assert done == events, f"{done} of {events} runs completed"
    return events / elapsed


def jobs_per_run() -> float:
    """Outbox jobs the last ``throughput`` run used per completed run."""
    return OutboxJob.objects.count() / max(1, Execution.objects.count())


def latency(events: int) -> tuple[float, float]:
    reset()
    worker = Worker(poll_interval=1.0)
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    worker.listening.wait(10)
    for i in range(events):
        ingestor.ingest("bench.tick", {"i": i})
        time.sleep(0.02)
    deadline = time.monotonic() + 60
    while Execution.objects.filter(status=Execution.Status.COMPLETED).count() < events:
        if time.monotonic() > deadline:
            raise RuntimeError("runs did not complete in 60 s")
        time.sleep(0.05)
    worker.stop()
    thread.join(30)
    rows = Execution.objects.values_list("event__created_at", "finished_at")
    millis = sorted((done - created).total_seconds() * 1000 for created, done in rows)
    return statistics.median(millis), millis[int(len(millis) * 0.99) - 1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    runs = [throughput(args.events) for _ in range(args.rounds)]
    per_run = jobs_per_run()
    bench_outbox.reset()
    jobs = [bench_outbox.drain(round(args.events * per_run), 4, 10) for _ in range(args.rounds)]
    p50, p99 = latency(200)
    reset()
    runs_s, jobs_s = statistics.median(runs), statistics.median(jobs)
    print(f"engine: {runs_s:,.0f} completed runs/s (3 steps each; median of {args.rounds})")
    print(
        f"outbox no-op drain: {jobs_s:,.0f} jobs/s = {jobs_s / per_run:,.0f} runs/s ceiling at "
        f"{per_run:g} jobs/run"
    )
    print(f"ratio engine/ceiling: {runs_s / (jobs_s / per_run):.2f}")
    print(f"latency at low load (ingest -> completed): p50 {p50:.1f} ms, p99 {p99:.1f} ms")


if __name__ == "__main__":
    main()
