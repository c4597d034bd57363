"""The declared Execution state machine, and the engine's writes agreeing with it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from automate_core.base import InvalidTransition
from automate_core.executions import store as runs
from automate_core.executions.models import Execution
from automate_core.outbox import store as outbox
from automate_core.testing.runtime import fire_timers, run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.code import step, workflow
from automate_core.workflows.flow import wait
from tests.testapp import workflows as test_workflows

pytestmark = pytest.mark.django_db

Status = Execution.Status
DECLARED = sorted(
    (source, target) for source, targets in Execution.TRANSITIONS.items() for target in targets
)


def test_every_status_has_its_declared_moves_and_finished_runs_have_none_but_retry():
    assert set(Execution.TRANSITIONS) == set(Status)
    finished = {s for s, targets in Execution.TRANSITIONS.items() if targets <= {Status.QUEUED}}
    assert finished == Execution.FINISHED


def test_an_undeclared_move_is_refused_and_leaves_the_status():
    run = Execution(workflow_name="w", version="v", status=Status.COMPLETED)
    with pytest.raises(InvalidTransition, match="'completed' to 'running'"):
        run.move_to(Status.RUNNING)
    assert run.status == Status.COMPLETED


@pytest.mark.parametrize(("source", "target"), DECLARED)
def test_the_checkpoint_compare_and_set_writes_every_declared_move(source, target):
    """The hot path's compare-and-set checks only that the run is as the visit read it, so
    every declared move passes it; the declared table is what limits the moves."""
    created = Execution.objects.create(workflow_name="w", version="v", status=source)
    outbox.enqueue("test.visit", {})
    [lease] = outbox.claim_batch("state-machine", 1)
    loaded = runs.load(created.pk)
    loaded.run.move_to(target)
    loaded.run.seq += 1
    runs.checkpoint(loaded, None, lease)
    created.refresh_from_db()
    assert (created.status, created.seq) == (target, 2)


def test_the_checkpoint_refuses_a_visit_of_a_run_another_writer_moved():
    created = Execution.objects.create(workflow_name="w", version="v", status=Status.QUEUED)
    outbox.enqueue("test.visit", {})
    [lease] = outbox.claim_batch("state-machine", 1)
    loaded = runs.load(created.pk)
    engine.cancel(created)
    loaded.run.move_to(Status.RUNNING)
    with pytest.raises(runs.RunMoved):
        runs.checkpoint(loaded, None, lease)
    created.refresh_from_db()
    assert created.status == Status.CANCELLED


@workflow("test-wait-last")
class WaitLast:
    """Its one step waits: the signal completes the run, the timeout fails it."""

    @step(start=True)
    def ask(self):
        return wait("go", timeout=timedelta(hours=1))


@pytest.fixture
def moves(monkeypatch) -> set[tuple[str, str]]:
    """Every (from, to) status move made through ``Execution.move_to``."""
    made: set[tuple[str, str]] = set()
    declared_move = Execution.move_to

    def recording(run: Execution, status: str) -> None:
        source = run.status
        declared_move(run, status)
        made.add((str(source), str(status)))

    monkeypatch.setattr(Execution, "move_to", recording)
    return made


def test_the_engine_makes_every_declared_move_and_no_other(moves):
    test_workflows.CALLS.clear()
    engine.start("three-steps")
    approved, expiring = engine.start("approval", user="a"), engine.start("approval", user="b")
    cancelled_waiting = engine.start("approval", user="c")
    engine.start("nap")
    failing = engine.start("flaky", fail_times=99)
    cancelled_running = engine.start("flaky", fail_times=99)
    engine.cancel(engine.start("three-steps"))
    signalled, timing_out = engine.start("test-wait-last"), engine.start("test-wait-last")
    run_until_idle()
    engine.signal("approved", {"approved": True}, execution=approved)
    engine.signal("go", execution=signalled)
    engine.cancel(cancelled_waiting)
    engine.cancel(cancelled_running)  # running, its retry pending
    for _ in range(3):  # timeouts, the nap's wake-up and the retries come due
        fire_timers()
        run_until_idle()
    engine.retry(failing)
    run_until_idle()  # fails again: it fails every attempt
    assert Execution.objects.get(pk=expiring.pk).status == Status.FAILED
    assert Execution.objects.get(pk=signalled.pk).status == Status.COMPLETED
    assert Execution.objects.get(pk=timing_out.pk).status == Status.FAILED
    # Not reached here: a queued run whose step no longer exists in its version fails.
    assert moves == set(DECLARED) - {(Status.QUEUED, Status.FAILED)}
