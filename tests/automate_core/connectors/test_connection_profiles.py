"""Connection profiles: named connector configs of a tenant, used by graph steps."""

import pytest
from django.core.exceptions import ValidationError

from automate_core.connectors.models import ConnectionProfile
from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.models import Automation

pytestmark = pytest.mark.django_db

GRAPH = {
    "start": "call",
    "steps": {
        "call": {"type": "connector", "connection": "crm", "action": "echo", "input": {"x": 1}}
    },
}


def run_graph(tenant):
    automation = Automation.objects.create(tenant=tenant, name="Uses a profile")
    automation.new_version(GRAPH).publish()
    run = engine.start(automation.slug, tenant=tenant)
    run_until_idle()
    return Execution.objects.get(pk=run.pk)


def test_a_step_uses_its_tenants_profile(tenant, monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_CRM_LABEL", "label-from-secret")
    ConnectionProfile.objects.create(
        tenant=tenant, name="CRM", connector="echo", config={"label": {"$secret": "CRM_LABEL"}}
    )
    run = run_graph(tenant)
    assert run.status == "completed"
    step = run.steps.get()
    assert step.output["data"] == {"params": {"x": 1}, "idempotency_key": f"{run.pk}:call"}


def test_another_tenants_profile_is_not_found(tenant, other_tenant):
    ConnectionProfile.objects.create(tenant=other_tenant, name="CRM", connector="echo")
    run = run_graph(tenant)
    assert run.status == "failed"
    assert "No connection profile named 'crm'" in run.error


def test_profile_config_is_validated_by_its_connector(tenant):
    with pytest.raises(ValidationError, match="unknown option"):
        ConnectionProfile.objects.create(
            tenant=tenant, name="Bad", connector="echo", config={"url": "x"}
        )
    with pytest.raises(ValidationError, match="No connectors plugin named 'nope'"):
        ConnectionProfile.objects.create(tenant=tenant, name="Bad", connector="nope")
