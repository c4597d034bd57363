"""The maintenance registry: apps add periodic tasks the worker's maintenance thread runs."""

from __future__ import annotations

import threading

import pytest

from automate_core.executions.retention import prune_a_few
from automate_core.governance.budgets import release_expired
from automate_core.outbox import maintenance
from automate_core.outbox.worker import Worker


@pytest.fixture
def registered():
    """Registers tasks for one test, then restores the registry."""
    saved = dict(maintenance._tasks)
    yield maintenance.register
    maintenance._tasks.clear()
    maintenance._tasks.update(saved)


def test_core_registers_budget_release_and_execution_pruning():
    tasks = {task.name: task for task in maintenance.tasks()}
    assert (tasks["budgets"].run, tasks["budgets"].every) == (release_expired, "reap")
    assert (tasks["executions"].run, tasks["executions"].every) == (prune_a_few, "prune")


def test_registering_a_name_again_replaces_its_task(registered):
    registered("app.reconcile", lambda: None)
    registered("app.reconcile", lambda: True, every="prune")
    (task,) = [t for t in maintenance.tasks() if t.name == "app.reconcile"]
    assert task.every == "prune" and task.run() is True


@pytest.mark.django_db(transaction=True)
def test_the_worker_runs_a_registered_task_each_period_and_survives_its_errors(registered):
    calls: list[str] = []
    ran_twice = threading.Event()

    def failing_then_counting() -> None:
        calls.append("run")
        if len(calls) >= 2:
            ran_twice.set()
        if len(calls) == 1:
            raise RuntimeError("a task's error is logged, not fatal")

    registered("app.task", failing_then_counting)
    worker = Worker(concurrency=1, reap_interval=0.05)
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert ran_twice.wait(timeout=10)
    finally:
        worker.stop()
        thread.join(timeout=10)
    assert not thread.is_alive()


@pytest.mark.django_db(transaction=True)
def test_a_prune_period_task_does_not_run_when_pruning_is_off(registered, settings):
    ran = threading.Event()
    registered("app.prune_task", ran.set, every="prune")
    worker = Worker(concurrency=1, reap_interval=0.05)
    worker.prune_interval = None
    thread = threading.Thread(target=worker.run)
    thread.start()
    try:
        assert not ran.wait(timeout=0.5)
    finally:
        worker.stop()
        thread.join(timeout=10)
