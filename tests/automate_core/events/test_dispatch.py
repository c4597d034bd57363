"""Events' dispatch: scheduled events reach whoever subscribed, with no workflow engine."""

from dataclasses import dataclass, field
from datetime import timedelta

import pytest
from django.utils import timezone

from automate_core.events import dispatch
from automate_core.events.models import Event
from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import fire_timers, run_until_idle
from tests.testapp.models import Invoice


@dataclass(eq=False)
class Recorder:
    """A subscriber that writes down what it heard, in order."""

    lead_minutes: int = 0
    heard: list[tuple[str, str]] = field(default_factory=list)

    def lead(self, event_type: str) -> timedelta:
        return timedelta(minutes=self.lead_minutes)

    def approaching(self, event: Event) -> None:
        self.heard.append(("approaching", event.status))

    def occurred(self, event: Event) -> None:
        self.heard.append(("occurred", event.status))

    def rescheduled(self, event: Event) -> None:
        self.heard.append(("rescheduled", event.occurs_at.isoformat()))

    def cancelled(self, event: Event) -> None:
        self.heard.append(("cancelled", event.status))


@pytest.fixture
def recorder(monkeypatch) -> Recorder:
    """The only subscriber: the engine is not subscribed."""
    recorder = Recorder()
    monkeypatch.setattr(dispatch, "_subscribers", [recorder])
    return recorder


def due_invoice(tenant, days: int = 2) -> Invoice:
    return Invoice.objects.create(tenant=tenant, due_at=timezone.now() + timedelta(days=days))


@pytest.mark.django_db(transaction=True)
def test_a_scheduled_event_occurs_for_its_subscribers_at_its_time(tenant, recorder):
    due_invoice(tenant)
    run_until_idle()
    assert recorder.heard == []
    fire_timers(kinds=("event.due",))
    run_until_idle()
    assert recorder.heard == [("occurred", "occurred")]


@pytest.mark.django_db(transaction=True)
def test_a_subscriber_with_a_lead_hears_the_event_approach_that_much_before(tenant, recorder):
    recorder.lead_minutes = 30
    invoice = due_invoice(tenant)
    [timer] = OutboxJob.objects.filter(kind="event.due")
    assert timer.available_at == invoice.due_at - timedelta(minutes=30)
    fire_timers(kinds=("event.due",))
    run_until_idle()
    assert recorder.heard == [("approaching", "scheduled")]
    fire_timers(kinds=("event.due",))
    run_until_idle()
    assert recorder.heard == [("approaching", "scheduled"), ("occurred", "occurred")]


@pytest.mark.django_db(transaction=True)
def test_moving_the_date_tells_subscribers_the_event_was_rescheduled(tenant, recorder):
    invoice = due_invoice(tenant)
    invoice.due_at = timezone.now() + timedelta(days=5)
    invoice.save()
    assert recorder.heard == [("rescheduled", invoice.due_at.isoformat())]


@pytest.mark.django_db(transaction=True)
def test_cancelling_tells_subscribers_and_the_event_never_occurs(tenant, recorder):
    invoice = due_invoice(tenant)
    invoice.delete()
    fire_timers()
    run_until_idle()
    assert recorder.heard == [("cancelled", "cancelled")]


@pytest.mark.django_db(transaction=True)
def test_with_no_engine_subscribed_an_occurring_event_starts_no_run(tenant, recorder):
    from automate_core.executions.models import Execution

    due_invoice(tenant, days=-1)
    fire_timers()
    run_until_idle()
    assert recorder.heard == [("occurred", "occurred")]
    assert not Execution.objects.exists()


def test_the_longest_lead_of_all_subscribers_is_the_events_lead(monkeypatch):
    monkeypatch.setattr(dispatch, "_subscribers", [Recorder(10), Recorder(45), Recorder(0)])
    assert dispatch.lead("invoice.due") == timedelta(minutes=45)


def test_subscribing_the_same_subscriber_twice_keeps_one_subscription(monkeypatch):
    monkeypatch.setattr(dispatch, "_subscribers", [])
    recorder = Recorder()
    dispatch.subscribe(recorder)
    dispatch.subscribe(recorder)
    dispatch.unsubscribe(recorder)
    assert dispatch._subscribers == []
