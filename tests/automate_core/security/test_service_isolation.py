"""Attacks on the services: each is called for tenant A and must not read or move B's rows."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.apps import apps
from django.core.exceptions import ValidationError

from automate_core.events.ingest import ingestor
from automate_core.executions.models import Execution
from automate_core.governance import budgets
from automate_core.governance.models import Budget
from automate_core.governance.secrets import SecretNotFoundError
from automate_core.governance.stored_secrets import DatabaseSecretsBackend, set_secret
from automate_core.outbox import store
from automate_core.rules.matching import dry_run, matching_triggers
from automate_core.rules.models import Trigger
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.engine import WorkflowNotFound

from .conftest import SHARED_EVENT_TYPE, SHARED_IDEMPOTENCY_KEY, SHARED_SIGNAL, World

pytestmark = pytest.mark.django_db


INVENTORIED_APPS = ("automate_core", "automate_llm", "rag")


def _tenant_owned_models() -> list[type]:
    """Every model of the inventoried apps with a ``tenant`` foreign key (TenantMembership
    aside: it is the link between users and tenants, not a tenant's data)."""
    found = []
    for app in INVENTORIED_APPS:
        for model in apps.get_app_config(app).get_models():
            names = {f.name for f in model._meta.get_fields()}
            if "tenant" in names and model.__name__ not in {"Tenant", "TenantMembership"}:
                found.append(model)
    return sorted(found, key=lambda m: m.__name__)


def _b_runs(world: World) -> list[dict]:
    return list(Execution.objects.filter(tenant=world.b.tenant).values().order_by("pk"))


# -- for_tenant ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, id=m.__name__) for m in _tenant_owned_models()],
)
def test_for_tenant_none_refuses_on_every_tenant_owned_model(world, model):
    with pytest.raises(ValueError, match="needs a tenant"):
        model.objects.for_tenant(None)
    mine = model.objects.for_tenant(world.a.tenant)
    assert mine.exists()
    assert set(mine.values_list("tenant_id", flat=True)) == {world.a.tenant.pk}


def test_the_tenant_owned_model_inventory_is_known():
    """A new tenant-owned model lands here, so someone decides how it is scoped."""
    assert {m.__name__ for m in _tenant_owned_models()} >= {
        "APIKey",
        "Automation",
        "Budget",
        "ConnectionProfile",
        "Event",
        "Execution",
        "OutboxJob",
        "Trigger",
        "WebhookSource",
        "LLMProvider",
        "LLMModelConfig",
        "Prompt",
        "PromptVersion",
        "PromptLabel",
        "LLMRequest",
        "LLMUsage",
        "Chunk",
        "Document",
        "EmbeddingCacheEntry",
        "EmbeddingModel",
        "IndexVersion",
        "KnowledgeSource",
        "RAGEndpoint",
    }


# -- signals -------------------------------------------------------------------------------------


def test_signal_for_tenant_a_never_resumes_tenant_b_runs(world):
    before = _b_runs(world)
    resumed = engine.signal(SHARED_SIGNAL, {"approved": True}, tenant=world.a.tenant)
    assert [r.pk for r in resumed] == [world.a.waiting_run.pk]
    resumed = engine.signal(SHARED_SIGNAL, {"approved": True}, tenant=world.a.tenant.pk)
    assert resumed == []  # A's run is no longer waiting; B's is never a candidate
    run_until_idle()
    assert _b_runs(world) == before


def test_signal_naming_other_tenants_run_with_own_tenant_resumes_nothing(world):
    """``execution`` wins over ``tenant`` today: a caller that passes both must not be able to
    reach another tenant's run by id."""
    before = _b_runs(world)
    resumed = engine.signal(
        SHARED_SIGNAL, {"approved": True}, execution=world.b.waiting_run.pk, tenant=world.a.tenant
    )
    assert resumed == []
    assert _b_runs(world) == before


def test_signal_without_any_scope_refuses(world):
    before = _b_runs(world)
    with pytest.raises((ValueError, TypeError)):
        engine.signal(SHARED_SIGNAL, {"approved": True})
    assert _b_runs(world) == before


# -- rules ---------------------------------------------------------------------------------------


def test_dry_run_for_a_never_lists_b_triggers(world):
    for payload in ({}, {"amount": 5000}):
        verdicts = dry_run(world.a.tenant, SHARED_EVENT_TYPE, payload)
        assert {v.trigger.pk for v in verdicts} == {world.a.trigger.pk, world.a.private_trigger.pk}
        assert {v.trigger.tenant_id for v in verdicts} == {world.a.tenant.pk}
    assert dry_run(world.a.tenant.pk, SHARED_EVENT_TYPE, {})  # by id too
    with pytest.raises(ValueError):
        dry_run(None, SHARED_EVENT_TYPE, {})


def test_matching_triggers_of_a_tenant_event_are_its_own(world):
    assert {t.pk for t in matching_triggers(world.a.event)} == {world.a.trigger.pk}


def test_event_of_a_never_starts_b_automations_even_with_the_same_type(world):
    before = _b_runs(world)
    event = ingestor.ingest(SHARED_EVENT_TYPE, {"amount": 5000}, tenant=world.a.tenant).event
    run_until_idle()
    started = Execution.objects.filter(event=event)
    assert started.count() == 2  # A's shared trigger and A's private trigger
    assert set(started.values_list("tenant_id", flat=True)) == {world.a.tenant.pk}
    versions = {world.a.version.pk, world.a.private_automation.live_version.pk}
    assert set(started.values_list("workflow_version_id", flat=True)) == versions
    assert _b_runs(world) == before


def test_event_of_a_never_resumes_b_runs_waiting_for_that_event(world):
    before = _b_runs(world)
    ingestor.ingest("payment.received", {"order": "o-1"}, tenant=world.a.tenant)
    run_until_idle()
    assert Execution.objects.get(pk=world.a.event_waiting_run.pk).status == "completed"
    assert _b_runs(world) == before


def test_tenantless_event_does_not_resume_tenant_runs(world):
    before = _b_runs(world)
    ingestor.ingest("payment.received", {"order": "o-1"}, tenant=None)
    run_until_idle()
    assert _b_runs(world) == before


def test_idempotency_key_of_b_gives_a_its_own_event(world):
    # The repeat is the same event A sent (a reused key with another payload is a 409).
    got = ingestor.ingest(
        SHARED_EVENT_TYPE,
        {"amount": 50},
        tenant=world.a.tenant,
        idempotency_key=SHARED_IDEMPOTENCY_KEY,
    )
    assert got.event.pk == world.a.event.pk
    fresh = ingestor.ingest(SHARED_EVENT_TYPE, {}, tenant=world.a.tenant, idempotency_key="b-only")
    ingestor.ingest(SHARED_EVENT_TYPE, {}, tenant=world.b.tenant, idempotency_key="b-only-2")
    assert fresh.created and fresh.event.tenant_id == world.a.tenant.pk
    again = ingestor.ingest(
        SHARED_EVENT_TYPE, {}, tenant=world.a.tenant, idempotency_key="b-only-2"
    )
    assert again.created and again.event.tenant_id == world.a.tenant.pk


def test_trigger_cannot_point_at_other_tenants_automation(world):
    trigger = Trigger(
        tenant=world.a.tenant,
        name="cross",
        event_type=SHARED_EVENT_TYPE,
        automation=world.b.automation,
        version=world.b.version,
    )
    with pytest.raises(ValidationError):
        trigger.full_clean()


# -- starting workflows --------------------------------------------------------------------------


def test_start_by_slug_resolves_only_the_callers_automation(world):
    run = engine.start("orders", tenant=world.a.tenant)
    assert run.tenant_id == world.a.tenant.pk
    assert run.workflow_version_id == world.a.version.pk
    with pytest.raises(WorkflowNotFound):
        engine.start(world.b.private_automation.slug, tenant=world.a.tenant)


# -- budgets -------------------------------------------------------------------------------------


def test_budgets_of_a_never_touch_b_budgets_with_the_same_scope(world):
    b_before = Budget.objects.filter(tenant=world.b.tenant).values().get()
    scopes = [("workflow", "orders"), ("tenant", str(world.b.tenant.pk))]
    held = budgets.reserve(world.a.tenant, scopes, tokens=900, cost=Decimal("1"))
    assert [b.pk for b in budgets.current_budgets(world.a.tenant, scopes)] == [world.a.budget.pk]
    budgets.settle(held, actual_tokens=900, actual_cost=Decimal("1"))
    with pytest.raises(budgets.BudgetExceeded) as refused:
        budgets.reserve(world.a.tenant, scopes, tokens=200)
    assert refused.value.budget.pk == world.a.budget.pk
    assert Budget.objects.filter(tenant=world.b.tenant).values().get() == b_before
    # B's identical budget is still whole.
    budgets.reserve(world.b.tenant, [("workflow", "orders")], tokens=1000)


# -- outbox --------------------------------------------------------------------------------------


def test_outbox_idempotency_key_of_b_never_returns_b_job(world):
    job = store.enqueue(
        "security.noop", {}, tenant=world.a.tenant, idempotency_key=world.b.job.idempotency_key
    )
    assert job.pk != world.b.job.pk
    assert job.tenant_id == world.a.tenant.pk


# -- stored secrets ------------------------------------------------------------------------------


def test_stored_secret_lookup_for_a_never_returns_b_value(world):
    backend = DatabaseSecretsBackend()
    assert backend.get_secret("SHARED_TOKEN", tenant=world.a.tenant) == "token-of-acme"
    set_secret("B_ONLY", "b-private", tenant=world.b.tenant)
    with pytest.raises(SecretNotFoundError):
        backend.get_secret("B_ONLY", tenant=world.a.tenant)
    with pytest.raises(SecretNotFoundError):
        backend.get_secret("B_ONLY")  # no tenant: only global secrets
    set_secret("B_ONLY", "global-value")
    assert backend.get_secret("B_ONLY", tenant=world.a.tenant) == "global-value"
    assert backend.get_secret("B_ONLY", tenant=world.b.tenant) == "b-private"


# -- prompts -------------------------------------------------------------------------------------


def test_prompt_resolution_for_a_never_returns_b_versions(world):
    from automate_llm import prompts

    assert prompts.resolve(world.a.tenant, "support-reply") == world.a.prompt_version
    assert prompts.resolve(world.a.tenant, "support-reply", label="production") == (
        world.a.prompt_version
    )
    draft = prompts.resolve(world.a.tenant, "support-reply", version=2, allow_draft=True)
    assert draft == world.a.prompt_draft
    with pytest.raises(prompts.PromptNotFound):
        prompts.resolve(world.a.tenant, world.b.private_prompt.slug)
    rendered = prompts.render(prompts.resolve(world.a.tenant.pk, "support-reply"), {"q": "?"})
    assert rendered[0].content == "You work for acme."


def test_labels_of_a_cannot_point_at_b_versions(world):
    from automate_core.errors import InvalidInputError
    from automate_llm import prompts
    from automate_llm.models import PromptLabel

    before = list(PromptLabel.objects.filter(tenant=world.b.tenant).values())
    with pytest.raises(InvalidInputError):
        prompts.move_label(world.a.prompt, "production", world.b.prompt_version)
    assert PromptLabel.objects.get(pk=world.a.prompt_label.pk).version_id == (
        world.a.prompt_version.pk
    )
    assert list(PromptLabel.objects.filter(tenant=world.b.tenant).values()) == before
