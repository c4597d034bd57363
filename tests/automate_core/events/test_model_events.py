"""Events declared on models: immediate ones occur once after commit, scheduled ones follow
the row's date field and condition, and handlers run as outbox jobs."""

from datetime import timedelta

import pytest
from django.db import transaction
from django.utils import timezone

from automate_core.events.models import Event
from automate_core.executions.models import Execution
from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import fire_timers, run_until_idle
from tests.testapp import workflows as test_workflows
from tests.testapp.models import Invoice

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def clear_hooks():
    test_workflows.HOOKS.clear()


def scheduled(invoice):
    return Event.objects.filter(type="invoice.due", object_id=str(invoice.pk))


def test_immediate_event_occurs_once_when_the_condition_becomes_true(tenant):
    invoice = Invoice.objects.create(tenant=tenant)
    assert not Event.objects.filter(type="invoice.paid").exists()
    invoice.status = "paid"
    invoice.save()
    invoice.save()
    [event] = Event.objects.filter(type="invoice.paid")
    assert event.entity == invoice and event.tenant_id == tenant.pk
    run_until_idle()
    assert [f"paid:{invoice.pk}"] == test_workflows.HOOKS


def test_nothing_happens_when_the_saving_transaction_rolls_back(tenant):
    with pytest.raises(RuntimeError), transaction.atomic():
        Invoice.objects.create(tenant=tenant, status="paid")
        raise RuntimeError("rolled back")
    assert not Event.objects.exists() and not OutboxJob.objects.exists()


def test_scheduled_event_is_created_at_the_date_and_fires_then(tenant):
    due = timezone.now() + timedelta(days=2)
    invoice = Invoice.objects.create(tenant=tenant, due_at=due)
    [event] = scheduled(invoice)
    assert (event.status, event.occurs_at) == ("scheduled", due)
    run_until_idle()
    assert [f"due-created:{invoice.pk}"] == test_workflows.HOOKS
    fire_timers(kinds=("event.due",))  # the early fire for the -60 min reminder
    run_until_idle()
    reminder = Execution.objects.get(workflow_name="invoice-reminder")
    assert reminder.status == "waiting" and reminder.wake_at == due - timedelta(minutes=60)
    fire_timers()
    run_until_idle()
    event.refresh_from_db()
    assert event.status == "occurred"
    assert f"due:{invoice.pk}" in test_workflows.HOOKS
    assert Execution.objects.get(pk=reminder.pk).status == "completed"


def test_changing_the_date_reschedules_and_moves_waiting_runs(tenant):
    invoice = Invoice.objects.create(tenant=tenant, due_at=timezone.now() + timedelta(days=2))
    run_until_idle()
    fire_timers(kinds=("event.due",))
    run_until_idle()
    later = timezone.now() + timedelta(days=5)
    invoice.due_at = later
    invoice.save()
    [event] = scheduled(invoice)
    assert event.occurs_at == later
    reminder = Execution.objects.get(workflow_name="invoice-reminder")
    assert reminder.wake_at == later - timedelta(minutes=60)


def test_condition_turning_false_cancels_the_scheduled_event_and_its_waiting_runs(tenant):
    invoice = Invoice.objects.create(tenant=tenant, due_at=timezone.now() + timedelta(days=2))
    run_until_idle()
    fire_timers(kinds=("event.due",))
    run_until_idle()
    invoice.status = "paid"
    invoice.save()
    [event] = scheduled(invoice)
    assert event.status == "cancelled"
    assert Execution.objects.get(workflow_name="invoice-reminder").status == "cancelled"
    fire_timers()
    run_until_idle()
    assert f"due-cancelled:{invoice.pk}" in test_workflows.HOOKS
    assert f"due:{invoice.pk}" not in test_workflows.HOOKS


def test_deleting_the_row_cancels_its_scheduled_events(tenant):
    invoice = Invoice.objects.create(tenant=tenant, due_at=timezone.now() + timedelta(days=2))
    pk = invoice.pk
    invoice.delete()
    assert Event.objects.get(type="invoice.due", object_id=str(pk)).status == "cancelled"


def test_event_fields_cannot_change_once_written(tenant):
    from automate_core.events.models import ImmutableEvent

    invoice = Invoice.objects.create(tenant=tenant, status="paid")
    event = Event.objects.get(type="invoice.paid")
    event.payload = {"forged": True}
    with pytest.raises(ImmutableEvent):
        event.save()
    assert invoice.pk
