"""Two tenants with rich, overlapping state, built only through the public services.

Both tenants use the same automation slug, event type, idempotency key, signal name, budget
scope, LLM provider, model and prompt slugs and prompt label, so any query that forgets its
tenant filter finds the other tenant's row.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import models
from django.utils import timezone
from rest_framework.test import APIClient

from automate_core.connectors.models import ConnectionProfile
from automate_core.events.ingest import ingestor
from automate_core.events.models import Event, WebhookSource
from automate_core.executions.models import Execution
from automate_core.governance.models import Budget, StoredSecret
from automate_core.governance.stored_secrets import set_secret
from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows import engine
from automate_core.workflows.models import Automation, WorkflowVersion
from automate_llm import prompts
from automate_llm.models import (
    LLMModelConfig,
    LLMProvider,
    LLMRequest,
    LLMUsage,
    Prompt,
    PromptLabel,
    PromptVersion,
)

from .app_world import build_apps
from .rag_world import build_rag

GRAPH = {
    "start": "done",
    "steps": {"done": {"type": "complete", "result": {"amount": "{{ event.payload.amount }}"}}},
}
SHARED_EVENT_TYPE = "order.paid"
SHARED_IDEMPOTENCY_KEY = "order-1"
SHARED_SIGNAL = "approved"


@dataclass
class TenantState:
    tenant: Tenant
    raw_key: str
    key: APIKey
    automation: Automation
    version: WorkflowVersion
    private_automation: Automation
    trigger: Trigger
    private_trigger: Trigger
    hook: WebhookSource
    hook_secret: str
    budget: Budget
    stored_secret: StoredSecret
    event: Event
    triggered_run: Execution
    waiting_run: Execution
    event_waiting_run: Execution
    job: OutboxJob
    llm_provider: LLMProvider
    llm_model: LLMModelConfig
    prompt: Prompt
    prompt_version: PromptVersion
    prompt_draft: PromptVersion
    prompt_label: PromptLabel
    private_prompt: Prompt
    llm_request: LLMRequest
    llm_usage: LLMUsage
    extra: dict[str, Any] = field(default_factory=dict)

    def client(self, **headers: str) -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {self.raw_key}", **headers)
        return client

    def ids(self) -> set[str]:
        """Every primary key of this tenant that an endpoint could show."""
        rows = [
            self.key,
            self.automation,
            self.version,
            self.private_automation,
            self.trigger,
            self.private_trigger,
            self.hook,
            self.budget,
            self.stored_secret,
            self.event,
            self.triggered_run,
            self.waiting_run,
            self.event_waiting_run,
            self.job,
            self.llm_provider,
            self.llm_model,
            self.prompt,
            self.prompt_version,
            self.prompt_draft,
            self.prompt_label,
            self.private_prompt,
            self.llm_request,
            self.llm_usage,
        ]
        found = {str(r.pk) for r in rows} | {str(self.tenant.pk)}
        found |= {
            str(pk) for pk in Event.objects.filter(tenant=self.tenant).values_list("pk", flat=True)
        }
        found |= {
            str(pk)
            for pk in Execution.objects.filter(tenant=self.tenant).values_list("pk", flat=True)
        }
        found |= {
            str(pk) for pk in APIKey.objects.filter(tenant=self.tenant).values_list("pk", flat=True)
        }
        for part in ("rag", "apps"):
            rows_of_part = self.extra.get(part, {}).values()
            found |= {str(row.pk) for row in rows_of_part if isinstance(row, models.Model)}
        return found


def _build(tenant: Tenant, monkeypatch: pytest.MonkeyPatch) -> TenantState:
    slug = tenant.slug
    key, raw = APIKey.issue(tenant=tenant, name=f"{slug}-key")
    APIKey.issue(tenant=tenant, name=f"{slug}-second-key", scopes=["events:write"])

    automation = Automation.objects.create(tenant=tenant, name="Orders")  # same slug everywhere
    version = automation.new_version(GRAPH)
    version.publish()
    private = Automation.objects.create(tenant=tenant, name=f"{slug} private")
    private.new_version(GRAPH).publish()
    trigger = Trigger.objects.create(
        tenant=tenant, name="shared", event_type=SHARED_EVENT_TYPE, automation=automation
    )
    private_trigger = Trigger.objects.create(
        tenant=tenant,
        name=f"{slug}-private-trigger",
        event_type=SHARED_EVENT_TYPE,
        condition={">": [{"var": "payload.amount"}, 1000]},
        automation=private,
    )

    secret = f"whsec-{slug}-0123456789"
    monkeypatch.setenv(f"AUTOMATE_SECRET_{slug.upper()}_HOOK", secret)
    hook = WebhookSource.objects.create(
        tenant=tenant, source=f"{slug}-shop", secret_ref=f"{slug.upper()}_HOOK"
    )
    budget = Budget.objects.create(
        tenant=tenant,
        scope_type=Budget.ScopeType.WORKFLOW,
        scope_id="orders",
        period=Budget.Period.TOTAL,
        limit_tokens=1000,
    )

    # The same profile slug in both tenants: a lookup that drops the tenant finds the wrong one.
    ConnectionProfile.objects.create(
        tenant=tenant, name="CRM", slug="crm", connector="echo", config={"label": slug}
    )

    # The same secret name in both tenants: a lookup that drops the tenant finds the wrong one.
    stored_secret = set_secret("SHARED_TOKEN", f"token-of-{slug}", tenant=tenant)

    event = ingestor.ingest(
        SHARED_EVENT_TYPE,
        {"amount": 50},
        tenant=tenant,
        idempotency_key=SHARED_IDEMPOTENCY_KEY,
    ).event
    waiting = engine.start("approval", tenant=tenant, user=slug)
    event_waiting = engine.start("payment-wait", tenant=tenant, order="o-1")
    run_until_idle()
    triggered = Execution.objects.get(event=event, workflow_name=automation.slug)
    # Queued for later, so run_until_idle() in the attacks leaves it alone.
    job = store.enqueue(
        "security.noop",
        {"tenant": slug},
        tenant=tenant,
        available_at=timezone.now() + timedelta(days=1),
        idempotency_key=f"security-{slug}",
    )

    # The LLM gateway: the same provider, model, prompt slugs and label in both tenants.
    llm = _build_llm(tenant)
    rag = build_rag(tenant)

    return TenantState(
        **llm,
        tenant=tenant,
        raw_key=raw,
        key=key,
        automation=automation,
        version=version,
        private_automation=private,
        trigger=trigger,
        private_trigger=private_trigger,
        hook=hook,
        hook_secret=secret,
        budget=budget,
        stored_secret=stored_secret,
        event=event,
        triggered_run=triggered,
        waiting_run=Execution.objects.get(pk=waiting.pk),
        event_waiting_run=Execution.objects.get(pk=event_waiting.pk),
        job=job,
        extra={"rag": rag, "apps": build_apps(tenant, version, rag["endpoint"])},
    )


def _build_llm(tenant: Tenant) -> dict[str, Any]:
    slug = tenant.slug
    provider = LLMProvider.objects.create(
        tenant=tenant,
        name="Main",
        provider_type="openai",
        config={"api_key": {"$secret": "OPENAI_KEY"}, "organization": f"org-{slug}"},
        is_default=True,
    )
    model = LLMModelConfig.objects.create(
        tenant=tenant, name="Fast", provider=provider, model_id="gpt-4o-mini", is_default=True
    )
    prompt = prompts.create_prompt(tenant, name="Support reply")  # same slug everywhere
    version = prompts.publish(
        prompts.create_version(
            prompt,
            system_template=f"You work for {slug}.",
            user_template="{{ q }}",
            variables=["q"],
        ),
        label="production",
    )
    draft = prompts.create_version(
        prompt, user_template=f"{slug} draft {{{{ q }}}}", variables=["q"]
    )
    private = prompts.create_prompt(tenant, name=f"{slug} private prompt")
    prompts.publish(prompts.create_version(private, user_template=f"{slug} secret"))
    request = LLMRequest.objects.create(
        tenant=tenant,
        provider=provider,
        provider_type="openai",
        model="gpt-4o-mini",
        prompt_version=version,
        prompt_slug=prompt.slug,
        idempotency_key=SHARED_IDEMPOTENCY_KEY,
        success=True,
        attempts=1,
        request={"messages": [{"role": "user", "content": f"question of {slug}"}]},
        response={"text": f"answer for {slug}"},
    )
    usage = LLMUsage.objects.create(
        tenant=tenant,
        request=request,
        provider_type="openai",
        model="gpt-4o-mini",
        input_tokens=12,
        output_tokens=5,
    )
    # Dated a year and more back, so usage reports over their default window count only the
    # calls a test makes.
    long_ago = timezone.now() - timedelta(days=400)
    LLMRequest.objects.filter(pk=request.pk).update(created_at=long_ago)
    LLMUsage.objects.filter(pk=usage.pk).update(created_at=long_ago)
    return {
        "llm_provider": provider,
        "llm_model": model,
        "prompt": prompt,
        "prompt_version": version,
        "prompt_draft": draft,
        "prompt_label": PromptLabel.objects.get(prompt=prompt, name="production"),
        "private_prompt": private,
        "llm_request": request,
        "llm_usage": usage,
    }


@dataclass
class World:
    a: TenantState
    b: TenantState


@pytest.fixture
def world(tenant, other_tenant, monkeypatch) -> World:
    """``a`` is the attacker's tenant (Acme), ``b`` the victim (Globex)."""
    world = World(a=_build(tenant, monkeypatch), b=_build(other_tenant, monkeypatch))
    assert world.a.waiting_run.status == world.b.waiting_run.status == "waiting"
    assert world.a.event_waiting_run.status == world.b.event_waiting_run.status == "waiting"
    assert world.a.triggered_run.status == world.b.triggered_run.status == "completed"
    return world


@pytest.fixture
def member_of_a(world):
    """A user who belongs to tenant A only."""
    user = get_user_model().objects.create_user("alice", "alice@example.com", "pw")
    TenantMembership.objects.create(tenant=world.a.tenant, user=user)
    return user
