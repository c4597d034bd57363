"""The developer guide's example (docs/workflows.md), run as written with only its import paths
changed: tests/testapp/models.py (Reservation) and tests/testapp/automations/.

Each test drains the outbox with the real worker (``Worker(once=True)``: its threads, claims,
leases and handlers, on their own connections to the embedded Postgres). Time moves as in the
other engine tests: ``fire_timers()`` makes the jobs due that a clock would make due later.
"""

from datetime import timedelta

import pytest
from django.utils import timezone

from automate_core.events.ingest import ingestor
from automate_core.events.models import Event
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.worker import Worker
from automate_core.testing.runtime import fire_timers
from automate_core.workflows import engine, registry
from tests.testapp.models import Reservation

pytestmark = pytest.mark.django_db(transaction=True)

CHECKOUT = "checkout_due:CheckoutOpsWF"
REMINDER = "checkin_due:PreArrivalReminder"


def work() -> None:
    """Run every due job with a real worker, until none is due."""
    Worker(once=True, concurrency=2).run()


def run_of(workflow: str) -> Execution:
    return Execution.objects.get(workflow_name=workflow)


def checkout_due(reservation: Reservation) -> Execution:
    """CheckoutOpsWF started by a checkout_due event about ``reservation``, now waiting for
    its guest's documents (the guide's model declares no checkout date, so the event comes
    from the events API's ingestor)."""
    ingestor.ingest("checkout_due", entity=reservation)
    work()
    return Execution.objects.get(workflow_name=CHECKOUT, event__object_id=str(reservation.pk))


def docs_uploaded(reservation: Reservation) -> None:
    ingestor.ingest("guest_docs_uploaded", entity=reservation)
    work()


def confirmed(checkin_in: timedelta = timedelta(days=2)) -> Reservation:
    return Reservation.objects.create(checkin_at=timezone.now() + checkin_in, status="confirmed")


def test_confirming_a_reservation_runs_the_welcome_handler_once():
    reservation = confirmed()
    reservation.save()
    work()
    [hook] = OutboxJob.objects.filter(kind="event.hook", payload__phase="occurred")
    assert hook.payload["handler"].endswith("single_step.send_welcome_email")
    assert hook.status == OutboxJob.Status.DONE
    [event] = Event.objects.filter(type="reservation_confirmed")
    assert event.entity == reservation


def test_pre_arrival_reminder_starts_an_hour_before_checkin():
    reservation = confirmed()
    work()
    fire_timers(kinds=("event.due",))  # the early fire, 60 minutes before check-in
    work()
    run = run_of(REMINDER)
    assert run.status == Execution.Status.WAITING
    assert run.wake_at == reservation.checkin_at - timedelta(minutes=60)
    fire_timers()
    work()
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED
    assert run.context == {"reservation_id": reservation.pk}


def test_checkout_run_waits_for_its_guest_documents():
    run = checkout_due(confirmed())
    assert run.status == Execution.Status.WAITING
    assert run.waiting_for["name"] == "guest_docs_uploaded"
    assert run.context["reservation_id"] == run.event.entity.pk


def test_documents_resume_the_run_which_retries_housekeeping_and_completes():
    reservation = confirmed()
    run = checkout_due(reservation)
    docs_uploaded(reservation)
    fire_timers()  # the housekeeping retry's backoff
    work()
    run.refresh_from_db()
    assert (run.status, run.result) == (Execution.Status.COMPLETED, {"final_state": "ok"})
    notify = run.steps.get(step_id="notify_housekeeping")
    assert (notify.status, notify.attempt) == (StepRun.Status.COMPLETED, 2)
    assert run.context["attempts"] == 2 and run.context["notified"] is True


def test_documents_of_another_reservation_do_not_resume_the_run():
    run = checkout_due(confirmed())
    docs_uploaded(confirmed())
    run.refresh_from_db()
    assert run.status == Execution.Status.WAITING


def test_without_documents_the_run_falls_back_after_90_minutes():
    run = checkout_due(confirmed())
    assert timedelta(minutes=89) < run.wake_at - timezone.now() <= timedelta(minutes=90)
    fire_timers()  # 90 minutes pass
    work()
    fire_timers()  # the housekeeping retry's backoff
    work()
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED
    assert [s.step_id for s in run.steps.order_by("seq")][:2] == ["await_docs", "fallback_docs"]


def test_the_event_signal_bridge_wakes_the_documents_wait():
    run = checkout_due(confirmed())
    assert [r.pk for r in engine.signal("event:guest_docs_uploaded")] == [run.pk]


def test_the_ops_window_signal_with_no_tenant_wakes_the_paused_run():
    run = started_at("pause_until_ops_window")
    assert run.status == Execution.Status.WAITING
    assert [r.pk for r in engine.signal("ops:window_open")] == [run.pk]
    work()
    fire_timers()  # the housekeeping retry's backoff
    work()
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED


def test_finalize_fails_the_run_when_housekeeping_was_not_notified():
    run = started_at("finalize")
    assert (run.status, run.error) == (Execution.Status.FAILED, "Housekeeping was not notified")


def test_reindex_listing_is_started_by_hand():
    run = engine.start("reindex_listing", listing_id=123)
    work()
    run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED
    assert run.context == {"listing_id": 123}


def started_at(step_id: str) -> Execution:
    """A CheckoutOpsWF run started at ``step_id``, for the steps the guide's own flow never
    reaches by itself (the ops-window pause, and finalize without a notification)."""
    reservation = confirmed()
    compiled = registry.get(CHECKOUT)
    assert compiled is not None
    run = Execution.objects.create(
        workflow_name=CHECKOUT,
        version=compiled.version,
        current_step=step_id,
        context={"reservation_id": reservation.pk},
    )
    engine._enqueue_step(run, step_id)
    work()
    run.refresh_from_db()
    return run
