"""``modal.run`` runs whose worker processes are killed with SIGKILL: twice right after a spawn
reached (the fake) Modal and before its call id was recorded, once while every run waits.

Afterwards every job has exactly one recorded result, every run completed with it, nothing is
left queued, and the spawns beyond one per job are the crashes after a spawn, one each on the job
it hit: the guarantee docs/modal.md states (no callback is configured, so no orphan can report in
time).

Three workers, so that one always survives the two crashes and carries on while the dead are
restarted: a restart (Django's start, tens of seconds on a loaded machine) is never on the test's
path, and the first start has a limit of its own, apart from the limits on the work. A
worker starved for longer than ``ORPHAN_AFTER_SECONDS`` between committing an intent and spawning
it sees its intent declared lost by a peer and spawns nothing: an extra ``lost`` attempt and no
extra spawn, which the assertions allow.
"""

from __future__ import annotations

import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pytest
from django.db.models import Count

from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from automate_core.workflows import engine
from automate_core.workflows.models import Automation
from automate_modal.models import ModalEndpoint, ModalJob
from tests.automate_core.outbox.conftest import start_worker
from tests.e2e.modal_cloud import ENV, SharedCloud

pytestmark = pytest.mark.e2e

RUNS = 10
CRASHES_AFTER_SPAWN = 2
# One thread and one job in hand each, so a kill interrupts exactly one spawn.
WORKER_ARGS = ["--concurrency", "1", "--batch-size", "1", "--lease-seconds", "2"]
WORKER_ARGS += ["--reap-seconds", "0.25", "--poll-ms", "100"]
WORKER_ARGS += ["--include", "tests.e2e.modal_worker"]

GRAPH = {
    "start": "gpu",
    "steps": {
        "gpu": {
            "type": "modal.run",
            "endpoint": "gpu",
            "input": {"n": "{{ context.n }}"},
            "next": "done",
        },
        "done": {"type": "complete", "result": {"n": "{{ steps.gpu.output.output.n }}"}},
    },
}


class Workers:
    """Worker processes, restarted when one dies. ``crashes`` counts those the double killed
    (SIGKILL); one that failed otherwise (say, at start) is restarted and not counted."""

    def __init__(self, env: dict[str, str], log: Path, count: int) -> None:
        self.env, self.log = env, log
        self.processes = [start_worker(env, log, *WORKER_ARGS) for _ in range(count)]
        self.crashes = 0

    def keep_alive(self) -> None:
        for index, process in enumerate(self.processes):
            if process.poll() is not None:
                self.crashes += process.returncode == -signal.SIGKILL
                self.processes[index] = start_worker(self.env, self.log, *WORKER_ARGS)

    def started(self) -> int:
        """How many workers have started (each logs one line once it is ready to claim)."""
        return self.log.read_text().count(" thread(s), batch ") if self.log.exists() else 0

    def kill_one(self) -> None:
        victim = self.processes.pop(0)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        self.processes.append(start_worker(self.env, self.log, *WORKER_ARGS))

    def stop(self) -> None:
        for process in self.processes:
            process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()


def wait_for(condition, workers: Workers, what: str, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        workers.keep_alive()
        if time.monotonic() > deadline:
            log = workers.log.read_text()[-4000:]
            pytest.fail(f"{what} not reached in {timeout}s; {state()}; worker log:\n{log}")
        time.sleep(0.05)


def state() -> str:
    """What the runs, jobs and outbox hold, for a failure's message."""
    return str(
        {
            "runs": Counter(Execution.objects.values_list("status", flat=True)),
            "jobs": Counter(ModalJob.objects.values_list("status", flat=True)),
            "outbox": Counter(OutboxJob.objects.values_list("kind", "status")),
        }
    )


def all_waiting_on_running_jobs() -> bool:
    return (
        Execution.objects.filter(status=Execution.Status.WAITING).count() == RUNS
        and ModalJob.objects.filter(status=ModalJob.Status.RUNNING).count() == RUNS
    )


def test_killed_workers_cost_one_extra_spawn_per_crash_and_lose_no_result(
    worker_env, tenant, tmp_path
):
    cloud = SharedCloud(tmp_path / "cloud")
    cloud.crash_after_spawn(CRASHES_AFTER_SPAWN)
    env = {**worker_env, ENV: str(cloud.root)}
    env["DJANGO_SETTINGS_MODULE"] = "tests.e2e.modal_worker_settings"
    ModalEndpoint.objects.create(
        tenant=tenant, name="GPU", slug="gpu", app_name="crash", function_name="gpu", timeout=600
    )
    automation = Automation.objects.create(tenant=tenant, name="GPU runs")
    automation.new_version(GRAPH).publish()
    runs = [engine.start(automation.slug, tenant=tenant, n=n) for n in range(RUNS)]

    workers = Workers(env, tmp_path / "workers.log", 3)
    try:
        wait_for(lambda: workers.started() >= 3, workers, "three workers started", timeout=300)
        wait_for(all_waiting_on_running_jobs, workers, "every run waiting on a running job")
        assert workers.crashes == CRASHES_AFTER_SPAWN
        workers.kill_one()  # while every run waits: nothing is held, nothing is lost
        for call_id in cloud.spawned():
            cloud.finish(call_id, cloud.call(call_id)["input"])
        wait_for(
            lambda: Execution.objects.filter(status=Execution.Status.COMPLETED).count() == RUNS,
            workers,
            "every run completed",
        )
        wait_for(
            lambda: not OutboxJob.objects.exclude(status=OutboxJob.Status.DONE).exists(),
            workers,
            "outbox drained",
        )
    finally:
        workers.stop()

    jobs = ModalJob.objects.filter(execution_id__in=[run.pk for run in runs])
    assert Counter(jobs.values_list("status", flat=True)) == {"succeeded": RUNS}
    outcomes = Counter(a["outcome"] for job in jobs for a in job.attempts)
    assert outcomes["succeeded"] == RUNS
    assert set(outcomes) == {"succeeded", "lost"}
    assert outcomes["lost"] >= CRASHES_AFTER_SPAWN
    assert all(job.output == job.input for job in jobs)
    spawns_per_job = Counter(cloud.call(c)["automate"]["job_id"] for c in cloud.spawned())
    assert set(spawns_per_job) == {str(job.pk) for job in jobs}
    assert Counter(spawns_per_job.values()) == {
        1: RUNS - CRASHES_AFTER_SPAWN,
        2: CRASHES_AFTER_SPAWN,
    }
    results = Execution.objects.filter(pk__in=[run.pk for run in runs])
    assert sorted(int(r["n"]) for r in results.values_list("result", flat=True)) == list(
        range(RUNS)
    )
    visits = StepRun.objects.filter(execution__in=results)
    assert Counter(visits.values_list("status", flat=True)) == {"completed": 3 * RUNS}
    doubled = visits.values("execution", "seq").annotate(n=Count("id")).filter(n__gt=1)
    assert not doubled.exists()
