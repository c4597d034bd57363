"""``manage.py modal_demo``: the demo tenant's GPU step, run end to end on the local backend."""

from __future__ import annotations

import io
import time

import pytest
from django.core.management import call_command

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.tenancy.models import Tenant
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows.models import Automation
from automate_modal.models import ModalEndpoint

from .jobs import poll_now

pytestmark = pytest.mark.django_db


def demo_tenant() -> Tenant:
    call_command("automate_demo", stdout=io.StringIO())
    call_command("modal_demo", stdout=io.StringIO())
    return Tenant.objects.get(slug="demo")


def test_the_demo_adds_a_local_endpoint_and_an_automation_once():
    tenant = demo_tenant()
    call_command("modal_demo", stdout=io.StringIO())
    endpoint = ModalEndpoint.objects.for_tenant(tenant).get()
    assert endpoint.backend == "local"
    assert Automation.objects.for_tenant(tenant).filter(slug="gpu-word-count").count() == 1


def test_without_the_demo_tenant_it_says_so_and_adds_nothing():
    out = io.StringIO()
    call_command("modal_demo", stdout=out)
    assert "automate_demo" in out.getvalue()
    assert not ModalEndpoint.objects.exists()


def test_a_submitted_event_runs_the_gpu_step_to_its_word_counts(settings):
    settings.AUTOMATE_MODAL = {**settings.AUTOMATE_MODAL, "CALLBACK_BASE_URL": ""}
    tenant = demo_tenant()
    ingestor.ingest("texts.submitted", {"texts": ["one", "two words"]}, tenant=tenant)
    run_until_idle()
    run = Execution.objects.get(workflow_name="gpu-word-count")
    deadline = time.monotonic() + 30
    while run.status == Execution.Status.WAITING and time.monotonic() < deadline:
        time.sleep(0.1)
        poll_now(rounds=1)
        run.refresh_from_db()
    assert run.status == Execution.Status.COMPLETED, run.error
    assert run.result["counts"] == [1, 2]
    assert run.usage["gpu_seconds"] > 0
