"""1,000 events through the engine while worker processes are killed with SIGKILL.

Afterwards every event has exactly one completed execution, no step visit is recorded as
completed twice, and nothing is left running or queued.
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter

import pytest
from django.db import transaction
from django.db.models import Count

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from tests.automate_core.outbox.conftest import start_worker

pytestmark = pytest.mark.e2e

TOTAL = 1000


def completed_runs() -> int:
    return Execution.objects.filter(status=Execution.Status.COMPLETED).count()


def wait_for(condition, log, timeout=120.0, what="condition"):
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met in {timeout}s; worker log:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def test_killed_workers_leave_every_event_with_exactly_one_completed_run(
    worker_env, tenant, tmp_path
):
    with transaction.atomic():
        events = [
            ingestor.ingest("crash.tick", {"n": i}, tenant=tenant).event for i in range(TOTAL)
        ]
    log = tmp_path / "workers.log"
    args = ["--concurrency", "2", "--batch-size", "5", "--lease-seconds", "1.5"]
    args += ["--reap-seconds", "0.25", "--poll-ms", "200"]
    workers = [start_worker(worker_env, log, *args) for _ in range(3)]
    rng = random.Random(7)
    try:
        for progress in (100, 300, 500, 700):
            wait_for(lambda p=progress: completed_runs() >= p, log, what=f"{progress} runs")
            victim = workers.pop(rng.randrange(len(workers)))
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            workers.append(start_worker(worker_env, log, *args))
        wait_for(lambda: completed_runs() == TOTAL, log, what="all runs completed")
        wait_for(
            lambda: not OutboxJob.objects.exclude(status=OutboxJob.Status.DONE).exists(),
            log,
            what="outbox drained",
        )
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        for worker in workers:
            worker.wait(timeout=30)

    runs = Execution.objects.filter(event__in=events)
    assert runs.count() == TOTAL
    assert Counter(runs.values_list("status", flat=True)) == {"completed": TOTAL}
    per_event = runs.values("event").annotate(n=Count("id")).filter(n__gt=1)
    assert not per_event.exists()
    assert sorted(r["n"] for r in runs.values_list("result", flat=True)) == list(range(TOTAL))
    steps = StepRun.objects.filter(execution__in=runs)
    assert steps.count() == 3 * TOTAL
    assert Counter(steps.values_list("status", flat=True)) == {"completed": 3 * TOTAL}
    assert not steps.values("execution", "step_id").annotate(n=Count("id")).filter(n__gt=1).exists()
