"""The code-first API as the developer guide writes it: one import, step methods as targets,
create_context given the Event model, and @on_event's keywords."""

import pytest

import automate_core.events
import automate_core.workflows
from automate_core.events import Event, EventDefinition, on_event
from automate_core.events.definitions import on_event_cancelled, on_event_created
from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import Retry, engine, goto, wait, wait_for_event
from automate_core.workflows.flow import Goto
from tests.testapp import workflows as test_workflows
from tests.testapp.models import Invoice, Reservation


def test_the_workflows_package_exports_the_whole_code_first_api():
    names = {"workflow", "event_workflow", "step", "get_context", "goto", "sleep", "wait"}
    names |= {"wait_for_event", "complete", "fail", "Retry", "engine"}
    assert set(automate_core.workflows.__all__) == names
    assert all(getattr(automate_core.workflows, name) is not None for name in names)
    assert engine.__name__ == "automate_core.workflows.engine"
    assert Retry().max_attempts == 3


def test_the_events_package_exports_model_events_and_handlers():
    assert set(automate_core.events.__all__) == {
        "EventDefinition",
        "on_event",
        "on_event_created",
        "on_event_cancelled",
        "Event",
    }
    assert Event._meta.label == "automate_core.Event"
    assert EventDefinition("x").holds(object())
    assert on_event_created is automate_core.events.on_event_created
    assert on_event_cancelled is automate_core.events.on_event_cancelled


class Steps:
    def finalize(self):
        return None


def test_goto_accepts_a_step_method_as_its_name():
    assert goto(Steps().finalize) == Goto("finalize")
    assert goto(Steps.finalize) == goto("finalize")


def test_waits_accept_step_methods_for_their_targets():
    steps = Steps()
    assert wait("go", on_timeout=steps.finalize).on_timeout == "finalize"
    assert wait_for_event("x", then=steps.finalize).then == "finalize"


@pytest.mark.django_db
def test_create_context_in_the_dict_form_still_works_with_a_deprecation_warning(tenant):
    ingestor.ingest("legacy.renews", {"plan": "pro"}, tenant=tenant)
    with pytest.warns(DeprecationWarning, match="event.payload"):
        run_until_idle()
    run = Execution.objects.get(workflow_name="legacy-context")
    assert run.status == Execution.Status.COMPLETED and run.context == {"plan": "pro"}


@pytest.fixture
def hooks():
    test_workflows.HOOKS.clear()
    return test_workflows.HOOKS


def test_on_event_takes_its_event_name_as_a_keyword():
    assert on_event(event_name="guide.keyword")(test_workflows.record_touched) is not None
    with pytest.raises(TypeError, match="event's name"):
        on_event()


@pytest.mark.django_db
def test_on_event_with_an_entity_type_runs_for_that_model_only(tenant, hooks):
    invoice = Invoice.objects.create(tenant=tenant)
    ingestor.ingest("entity.touched", tenant=tenant, entity=invoice)
    run_until_idle()
    assert sorted(hooks) == sorted([f"invoice-touched:{invoice.pk}", "touched"])
    hooks.clear()
    reservation = Reservation.objects.create(checkin_at="2030-01-01T12:00:00Z")
    ingestor.ingest("entity.touched", tenant=tenant, entity=reservation)
    run_until_idle()
    assert hooks == ["touched"]
