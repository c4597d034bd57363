"""``engine.signal`` with no tenant: the install's default tenant where that is unambiguous,
a refusal that says what to pass where it is not."""

import pytest

from automate_core.executions.models import Execution
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine

pytestmark = pytest.mark.django_db


def waiting_approval(**kwargs) -> Execution:
    run = engine.start("approval", user="ada", **kwargs)
    run_until_idle()
    return run


def test_a_signal_with_no_tenant_reaches_the_only_tenants_runs(tenant):
    run = waiting_approval(tenant=tenant)
    assert [r.pk for r in engine.signal("approved", {"approved": True})] == [run.pk]


def test_a_signal_with_no_tenant_reaches_runs_that_belong_to_no_tenant(tenant):
    run = waiting_approval()
    assert [r.pk for r in engine.signal("approved")] == [run.pk]


def test_a_signal_with_no_tenant_is_refused_with_several_tenants(tenant, other_tenant):
    run = waiting_approval(tenant=tenant)
    with pytest.raises(ValueError, match=r"tenant=<a Tenant or its id>.*DEFAULT_TENANT"):
        engine.signal("approved")
    run.refresh_from_db()
    assert run.status == Execution.Status.WAITING


def test_a_signal_with_no_tenant_goes_to_the_default_tenant(tenant, other_tenant, settings):
    settings.AUTOMATE = {**getattr(settings, "AUTOMATE", {}), "DEFAULT_TENANT": "globex"}
    waiting_approval(tenant=tenant)
    theirs = waiting_approval(tenant=other_tenant)
    assert [r.pk for r in engine.signal("approved")] == [theirs.pk]


def test_a_default_tenant_that_does_not_exist_is_named_in_the_error(tenant, settings):
    settings.AUTOMATE = {**getattr(settings, "AUTOMATE", {}), "DEFAULT_TENANT": "initech"}
    with pytest.raises(ValueError, match="'initech' names no tenant"):
        engine.signal("approved")
