"""JSON-graph runs: what signal and event payloads add to the context, and waits for an event
matched with the run's own values."""

import pytest

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

APPROVAL = {
    "start": "hold",
    "steps": {
        "hold": {"type": "wait", "signal": "approved", "next": "done"},
        "done": {"type": "complete", "result": {"by": "{{ context.approver }}"}},
    },
}
PAYMENT = {
    "start": "await_payment",
    "steps": {
        "await_payment": {
            "type": "wait_for_event",
            "event": "payment.received",
            "match": {"==": [{"var": "payload.order"}, "{{ context.order }}"]},
            "next": "done",
        },
        "done": {"type": "complete", "result": {"paid": "{{ context.amount }}"}},
    },
}


def started(tenant, graph, **kwargs) -> Execution:
    automation = Automation.objects.create(tenant=tenant, name="Graph")
    automation.new_version(graph).publish()
    run = engine.start(automation.slug, tenant=tenant, **kwargs)
    run_until_idle()
    return run


def finished(run: Execution) -> Execution:
    run_until_idle()
    run.refresh_from_db()
    return run


def test_a_graph_without_a_context_keeps_the_signal_payload(tenant):
    run = started(tenant, APPROVAL)
    engine.signal("approved", {"approver": "ada"}, execution=run)
    run = finished(run)
    assert run.status == Execution.Status.COMPLETED and run.result == {"by": "ada"}


def test_a_graph_with_a_context_keeps_only_the_keys_it_declares(tenant):
    run = started(tenant, {**APPROVAL, "context": {"approver": ""}})
    engine.signal("approved", {"approver": "ada", "role": "admin"}, execution=run)
    run = finished(run)
    assert run.context == {"approver": "ada"}


def test_a_graph_without_a_context_keeps_the_event_payload_it_waited_for(tenant):
    run = started(tenant, PAYMENT, order="A-1")
    ingestor.ingest("payment.received", {"order": "A-1", "amount": 30}, tenant=tenant)
    run = finished(run)
    assert run.result == {"paid": 30}


def test_wait_for_event_match_is_rendered_with_the_runs_values(tenant):
    run = started(tenant, PAYMENT, order="A-1")
    assert Execution.objects.get(pk=run.pk).waiting_for["match"] == {
        "==": [{"var": "payload.order"}, "A-1"]
    }
    ingestor.ingest("payment.received", {"order": "B-2", "amount": 99}, tenant=tenant)
    assert finished(run).status == Execution.Status.WAITING
