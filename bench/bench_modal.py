"""Modal GPU jobs: what 1,000 waiting jobs cost a worker, and how fast a callback resumes a run.

Modal itself is the SDK double (``automate_modal.testing.fake_modal``), in process; the worker is
an in-process ``Worker`` (default concurrency) listening on the ``automate_bench_modal`` database.

* ``waiting``: 1,000 runs of a one-step ``modal.run`` workflow are started and spawned, then
  wait on their jobs. While they wait, the process's threads and resident memory are sampled
  (``/proc/self/status``), against the peer: the same 1,000 calls waited on the usual way, one
  thread each blocking in ``FunctionCall.get()`` (the double blocks as the SDK does). Memory is
  the growth over the process before the waits began.
* ``latency``: one run at a time waits on its job; its completion callback is POSTed in process
  (signature check, job ended, run signalled) and the time to the run's next step starting
  (the StepRun's ``started_at``) is taken. Goal: p50 under 50 ms.

Reconcile polls and orphan checks are pushed out past the measurement so only the callback path
is timed. Run: ``.venv/bin/python bench/bench_modal.py [--jobs 1000] [--callbacks 200]``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import gc
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ["AUTOMATE_MODAL"] = json.dumps(
    {
        "CALLBACK_BASE_URL": "http://localhost",
        "POLL_INITIAL_SECONDS": 3600,
        "POLL_MAX_SECONDS": 3600,
        "ORPHAN_AFTER_SECONDS": 3600,
    }
)
from bench.database import setup_django

setup_django("automate_bench_modal")

from django.core.management import call_command  # noqa: E402
from django.db import connection  # noqa: E402
from django.test import Client  # noqa: E402

from automate_core.executions.models import Execution, StepRun  # noqa: E402
from automate_core.outbox.worker import Worker  # noqa: E402
from automate_core.tenancy.models import Tenant  # noqa: E402
from automate_core.workflows import engine  # noqa: E402
from automate_core.workflows.models import Automation  # noqa: E402
from automate_modal.backends import modal_sdk  # noqa: E402
from automate_modal.models import ModalEndpoint, ModalJob  # noqa: E402
from automate_modal.testing import FakeModalCloud, fake_modal  # noqa: E402

GRAPH = {
    "start": "gpu",
    "steps": {
        "gpu": {"type": "modal.run", "endpoint": "gpu", "input": {"n": "{{ context.n }}"}},
    },
}


#: Callbacks run first and not counted (imports, compiled workflow, prepared statements).
WARM_UP = 5


def process_status() -> tuple[int, float]:
    """This process's thread count and resident memory (MiB)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["Threads"]), int(fields["VmRSS"].split()[0]) / 1024


def sample(seconds: float = 1.0) -> tuple[int, float]:
    """The most threads and memory seen over ``seconds`` (after a garbage collection)."""
    gc.collect()
    threads, rss = 0, 0.0
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        now_threads, now_rss = process_status()
        threads, rss = max(threads, now_threads), max(rss, now_rss)
        time.sleep(0.05)
    return threads, rss


def reset() -> Automation:
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE automate_modal_modaljob, automate_core_steprun, automate_core_execution, "
            "automate_core_outboxjob, automate_core_tenant CASCADE"
        )
    tenant = Tenant.objects.create(name="Bench", slug="bench")
    ModalEndpoint.objects.create(
        tenant=tenant, name="GPU", slug="gpu", app_name="bench", function_name="gpu"
    )
    automation = Automation.objects.create(tenant=tenant, name="GPU", slug="gpu-runs")
    automation.new_version(GRAPH).publish()
    return automation


def wait_until(condition, what: str, timeout: float = 600.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not reached in {timeout:.0f} s")
        time.sleep(0.05)


def running_worker() -> tuple[Worker, threading.Thread]:
    worker = Worker()
    thread = threading.Thread(target=worker.run, daemon=True)
    thread.start()
    worker.listening.wait(10)
    return worker, thread


def start_waiting(automation: Automation, first: int, count: int) -> None:
    for n in range(first, first + count):
        engine.start(automation.slug, tenant=automation.tenant_id, n=n)
    total = first + count
    wait_until(
        lambda: (
            ModalJob.objects.filter(status=ModalJob.Status.RUNNING).count() == total
            and Execution.objects.filter(status=Execution.Status.WAITING).count() == total
        ),
        f"{total} runs waiting",
    )


def ours_waiting(jobs: int) -> tuple[int, float]:
    """Threads and memory growth while ``jobs`` more runs wait on their jobs, worker running
    (after a first few, so the growth is the waits', not the first imports')."""
    automation = reset()
    worker, thread = running_worker()
    start_waiting(automation, 0, 20)
    _, before = sample()
    start_waiting(automation, 20, jobs)
    threads, during = sample()
    worker.stop()
    thread.join(30)
    return threads, during - before


def peer_waiting(cloud: FakeModalCloud, jobs: int) -> tuple[int, float]:
    """Threads and memory growth while ``jobs`` threads block in ``FunctionCall.get()``."""
    sdk = modal_sdk.modal
    function = sdk.Function.from_name("bench", "gpu").with_options(gpu="L4")
    calls = [function.spawn({"n": n}).object_id for n in range(jobs)]
    _, before = sample()
    waiters = [
        threading.Thread(target=lambda c=c: sdk.FunctionCall.from_id(c).get(), daemon=True)
        for c in calls
    ]
    for waiter in waiters:
        waiter.start()
    threads, during = sample()
    for call_id in calls:
        cloud.finish(call_id, {"ok": True})
    for waiter in waiters:
        waiter.join(30)
    return threads, during - before


def callback_latency(cloud: FakeModalCloud, runs: int) -> list[tuple[float, float]]:
    """Milliseconds from each callback's POST to its answer, and to the run's next step
    starting."""
    automation = reset()
    worker, thread = running_worker()
    client = Client(HTTP_HOST="localhost")
    millis: list[tuple[float, float]] = []
    for n in range(WARM_UP + runs):
        run = engine.start(automation.slug, tenant=automation.tenant_id, n=n)
        wait_until(
            lambda run=run: (
                ModalJob.objects.filter(
                    execution_id=run.pk, status=ModalJob.Status.RUNNING
                ).exists()
                and Execution.objects.filter(pk=run.pk, status=Execution.Status.WAITING).exists()
            ),
            "the run waiting",
            timeout=30,
        )
        url = urlsplit(cloud.spawned[-1].automate["callback_url"])
        posted = dt.datetime.now(dt.UTC)
        response = client.post(
            f"{url.path}?{url.query}", {"output": {"n": n}}, content_type="application/json"
        )
        assert response.status_code == 200, response.content
        answered = dt.datetime.now(dt.UTC)
        wait_until(
            lambda run=run: StepRun.objects.filter(execution_id=run.pk).count() == 2,
            "the next step",
            timeout=30,
        )
        resumed = StepRun.objects.filter(execution_id=run.pk).order_by("-seq").first()
        assert resumed is not None and resumed.started_at is not None
        millis.append(
            (
                (answered - posted).total_seconds() * 1000,
                (resumed.started_at - posted).total_seconds() * 1000,
            )
        )
    worker.stop()
    thread.join(30)
    return millis[WARM_UP:]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--callbacks", type=int, default=200)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    with fake_modal() as cloud:
        cloud.deploy("bench", "gpu")
        ours_threads, ours_mib = ours_waiting(args.jobs)
        peer_threads, peer_mib = peer_waiting(cloud, args.jobs)
        timings = callback_latency(cloud, args.callbacks)
    reset()
    answers = [answer for answer, _ in timings]
    millis = sorted(started for _, started in timings)
    p50 = statistics.median(millis)
    p99 = millis[max(0, int(len(millis) * 0.99) - 1)]
    print(f"{args.jobs} jobs waiting, worker running: {ours_threads} threads, +{ours_mib:.1f} MiB")
    print(f"{args.jobs} blocking FunctionCall.get(): {peer_threads} threads, +{peer_mib:.1f} MiB")
    print(f"ratio threads ours/peer: {ours_threads / peer_threads:.3f}")
    print(f"ratio memory growth ours/peer: {ours_mib / max(peer_mib, 0.1):.2f}")
    print(
        f"callback -> next step started ({args.callbacks} runs, one at a time): "
        f"p50 {p50:.1f} ms, p99 {p99:.1f} ms; p50/goal(50 ms) {p50 / 50:.2f}"
    )
    print(
        f"  of which the callback's own answer (job ended, run signalled): p50 "
        f"{statistics.median(answers):.1f} ms"
    )


if __name__ == "__main__":
    main()
