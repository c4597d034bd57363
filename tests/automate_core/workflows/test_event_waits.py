"""Which event wakes a ``wait_for_event``: one about the run's own entity by default, any that
satisfies ``match`` when one is given, any in the tenant with ``broadcast``."""

import pytest

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from tests.testapp.models import Invoice

pytestmark = pytest.mark.django_db

Status = Execution.Status


def shipped(tenant, mode: str, parcel: str = "P-1") -> tuple[Execution, Invoice]:
    """A parcel-delivery run started by an event about a new invoice, now waiting."""
    invoice = Invoice.objects.create(tenant=tenant)
    ingestor.ingest(
        "parcel.shipped", {"mode": mode, "parcel": parcel}, tenant=tenant, entity=invoice
    )
    run_until_idle()
    run = Execution.objects.get(workflow_name="parcel-delivery", event__object_id=str(invoice.pk))
    assert run.status == Status.WAITING
    return run, invoice


def delivered(tenant, entity=None, parcel: str = "") -> None:
    ingestor.ingest("parcel.delivered", {"parcel": parcel}, tenant=tenant, entity=entity)
    run_until_idle()


def status_of(run: Execution) -> str:
    run.refresh_from_db()
    return run.status


def test_a_wait_wakes_for_an_event_about_its_own_entity(tenant):
    run, invoice = shipped(tenant, "entity")
    delivered(tenant, entity=invoice)
    assert status_of(run) == Status.COMPLETED


def test_a_wait_sleeps_through_an_event_about_another_entity(tenant):
    run, _ = shipped(tenant, "entity")
    delivered(tenant, entity=Invoice.objects.create(tenant=tenant))
    assert status_of(run) == Status.WAITING


def test_a_wait_sleeps_through_an_event_about_no_entity(tenant):
    run, _ = shipped(tenant, "entity")
    delivered(tenant)
    assert status_of(run) == Status.WAITING


def test_match_replaces_the_entity_correlation(tenant):
    run, _ = shipped(tenant, "match", parcel="P-7")
    delivered(tenant, entity=Invoice.objects.create(tenant=tenant), parcel="P-8")
    assert status_of(run) == Status.WAITING
    delivered(tenant, entity=Invoice.objects.create(tenant=tenant), parcel="P-7")
    assert status_of(run) == Status.COMPLETED


def test_a_broadcast_wait_wakes_for_any_event_of_its_tenant(tenant, other_tenant):
    run, _ = shipped(tenant, "broadcast")
    delivered(other_tenant)
    assert status_of(run) == Status.WAITING
    delivered(tenant)
    assert status_of(run) == Status.COMPLETED


def test_the_event_signal_wakes_a_wait_for_that_event(tenant):
    run, _ = shipped(tenant, "entity")
    resumed = engine.signal("event:parcel.delivered", {"parcel": "P-1"}, tenant=tenant)
    assert [r.pk for r in resumed] == [run.pk]
    run_until_idle()
    assert status_of(run) == Status.COMPLETED


def test_the_event_signal_checks_a_waits_match_against_its_payload(tenant):
    run, _ = shipped(tenant, "match", parcel="P-7")
    assert engine.signal("event:parcel.delivered", {"parcel": "P-8"}, tenant=tenant) == []
    assert status_of(run) == Status.WAITING
