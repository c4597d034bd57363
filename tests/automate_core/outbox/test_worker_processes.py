"""Real `manage.py automate_worker` processes on the test database: kill -9, restart, SIGTERM.

The workers reach the test database through DATABASE_URL (see ``worker_env`` in conftest).
"""

from __future__ import annotations

import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pytest
from django.db import transaction

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from tests.automate_core.outbox import handlers
from tests.automate_core.outbox.conftest import start_worker

Status = OutboxJob.Status

pytestmark = [pytest.mark.e2e, pytest.mark.usefixtures("record_table")]


def wait_for(
    condition: Callable[[], bool], log: Path, timeout: float = 60.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met in {timeout}s; worker log:\n{log.read_text()[-4000:]}")
        time.sleep(0.02)


def is_ready(log: Path, pid: int) -> bool:
    """Whether worker ``pid`` logged its start line, which it does after installing its signal
    handlers (the line names the worker ``host:pid:suffix``)."""
    return any(
        f":{pid}:" in line and " thread(s), batch " in line for line in log.read_text().splitlines()
    )


def done_count() -> int:
    return OutboxJob.objects.filter(status=Status.DONE).count()


def test_killed_workers_lose_no_job_and_complete_none_twice(worker_env, tmp_path):
    total = 1000
    with transaction.atomic():
        ids = {
            str(store.enqueue("test.record", {"sleep": 0.01}, max_attempts=50).id)
            for _ in range(total)
        }
    log = tmp_path / "workers.log"
    # Short leases so the jobs of killed workers come back quickly.
    args = ["--concurrency", "2", "--batch-size", "5", "--lease-seconds", "1.5"]
    args += ["--reap-seconds", "0.25", "--poll-ms", "200"]
    workers = [start_worker(worker_env, log, *args) for _ in range(3)]
    rng = random.Random(1)
    killed = []
    try:
        for progress in (150, 350, 550, 750):
            wait_for(lambda p=progress: done_count() >= p, log, what=f"{progress} jobs done")
            victim = workers.pop(rng.randrange(len(workers)))
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.wait())
            workers.append(start_worker(worker_env, log, *args))
        wait_for(lambda: done_count() == total, log, what="all jobs done")
        # A worker restarted just before the end may still be starting; one that has not yet
        # installed its signal handlers would die of the SIGTERM instead of stopping cleanly.
        wait_for(lambda: all(is_ready(log, w.pid) for w in workers), log, what="workers up")
    finally:
        for worker in workers:
            worker.send_signal(signal.SIGTERM)
        exit_codes = [worker.wait(timeout=20) for worker in workers]

    assert killed == [-signal.SIGKILL] * 4
    assert exit_codes == [0] * len(workers), log.read_text()[-4000:]
    rows = list(OutboxJob.objects.values_list("id", "status", "fencing_token", "attempts"))
    assert Counter(status for _, status, _, _ in rows) == {Status.DONE: total}
    # Exactly one committed attempt per job, and it is the one holding the final token.
    records = handlers.records()
    assert set(records) == ids
    assert {str(job_id): token for job_id, _, token, _ in rows} == records
    # The kills did land mid-job: some jobs needed another attempt after their lease expired.
    assert any(attempts > 1 for _, _, _, attempts in rows)


def test_sigterm_lets_the_running_job_finish_before_exit(worker_env, tmp_path):
    job = store.enqueue("test.record", {"sleep": 1.0})
    log = tmp_path / "worker.log"
    worker = start_worker(worker_env, log, "--concurrency", "1", "--poll-ms", "100")
    try:
        wait_for(
            lambda: OutboxJob.objects.get(id=job.id).status == Status.RUNNING, log, what="running"
        )
        worker.send_signal(signal.SIGTERM)
        exit_code = worker.wait(timeout=20)
    finally:
        if worker.poll() is None:
            worker.kill()

    assert exit_code == 0, log.read_text()
    row = OutboxJob.objects.get(id=job.id)
    assert (row.status, row.attempts) == (Status.DONE, 1)
    assert set(handlers.records()) == {str(job.id)}
    assert "outbox worker stopped: done=1" in log.read_text()


def test_worker_command_once_drains_and_reports_outcomes(worker_env, tmp_path):
    for _ in range(3):
        store.enqueue("test.record", {})
    store.enqueue("test.fail", {}, max_attempts=1)
    log = tmp_path / "worker.log"

    exit_code = start_worker(worker_env, log, "--once", "--concurrency", "2").wait(timeout=30)

    assert exit_code == 0, log.read_text()
    assert "outbox worker stopped: dead=1, done=3" in log.read_text()
    assert len(handlers.records()) == 3
