"""Attacks on ``/api/v1/``: tenant A (Acme) tries to read or act on tenant B's (Globex) rows.

Every route under ``/api/v1/`` is enumerated from the URL conf: a new endpoint fails
``test_every_api_route_has_an_isolation_attack`` until it is added to one of the tables below
(and so gets attacked by the parametrized tests).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import timedelta
from typing import Any

import pytest
from django.db import models
from django.urls import URLPattern, URLResolver, get_resolver, resolve
from django.utils import timezone
from rest_framework.test import APIClient

from automate_core.events.models import Event, WebhookSource
from automate_core.events.webhooks import sign
from automate_core.executions.models import Execution
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey
from automate_core.testing.runtime import run_until_idle
from automate_core.workflows.models import Automation, WorkflowVersion
from automate_llm.models import LLMModelConfig, LLMProvider, Prompt, PromptLabel, PromptVersion
from rag.models import EmbeddingModel, IndexVersion, KnowledgeSource, RAGEndpoint

from .conftest import SHARED_EVENT_TYPE, SHARED_IDEMPOTENCY_KEY, SHARED_SIGNAL, World

pytestmark = pytest.mark.django_db

API_PREFIX = "api/v1/"

# Route name -> path. List routes: A must see none of B's ids.
LIST_ROUTES = {
    "api-key-list": "/api/v1/api-keys",
    "budget-list": "/api/v1/budgets",
    "event-list": "/api/v1/events",
    "execution-list": "/api/v1/executions",
    "llm-prompt-list": "/api/v1/llm/prompts",
    "automation-list": "/api/v1/automations",
    "trigger-list": "/api/v1/triggers",
    "webhook-source-list": "/api/v1/webhook-sources",
    "llm-provider-list": "/api/v1/llm/providers",
    "llm-model-list": "/api/v1/llm/models",
    "rag-config-source-list": "/api/v1/rag/config/sources",
    "rag-config-endpoint-list": "/api/v1/rag/config/endpoints",
    "rag-config-embedding-model-list": "/api/v1/rag/config/embedding-models",
}
# Route name -> (path template, which of B's objects it addresses). A must get 404.
DETAIL_ROUTES = {
    "api-key-detail": ("/api/v1/api-keys/{pk}", "key"),
    "budget-detail": ("/api/v1/budgets/{pk}", "budget"),
    "event-detail": ("/api/v1/events/{pk}", "event"),
    "execution-detail": ("/api/v1/executions/{pk}", "waiting_run"),
    "execution-signal": ("/api/v1/executions/{pk}/signal", "waiting_run"),
    "execution-retry": ("/api/v1/executions/{pk}/retry", "waiting_run"),
    "execution-cancel": ("/api/v1/executions/{pk}/cancel", "waiting_run"),
    "llm-prompt-detail": ("/api/v1/llm/prompts/{pk}", "prompt"),
    "llm-prompt-labels": ("/api/v1/llm/prompts/{pk}/labels", "prompt"),
    "llm-prompt-render": ("/api/v1/llm/prompts/{pk}/render", "prompt"),
    "llm-prompt-version-list": ("/api/v1/llm/prompts/{pk}/versions", "prompt"),
    "llm-prompt-version-detail": ("/api/v1/llm/prompts/{pk}/versions/1", "prompt"),
    # v2 is each tenant's draft: publishing it is the attack.
    "llm-prompt-version-publish": ("/api/v1/llm/prompts/{pk}/versions/2/publish", "prompt"),
    "automation-detail": ("/api/v1/automations/{pk}", "automation"),
    "workflow-version-list": ("/api/v1/automations/{pk}/versions", "automation"),
    "workflow-version-validate": ("/api/v1/automations/{pk}/versions/validate", "automation"),
    "workflow-version-detail": ("/api/v1/automations/{pk}/versions/1", "automation"),
    "workflow-version-publish": ("/api/v1/automations/{pk}/versions/1/publish", "automation"),
    "workflow-version-make-live": ("/api/v1/automations/{pk}/versions/1/make-live", "automation"),
    "workflow-version-diff": ("/api/v1/automations/{pk}/versions/1/diff", "automation"),
    "trigger-detail": ("/api/v1/triggers/{pk}", "trigger"),
    "webhook-source-detail": ("/api/v1/webhook-sources/{pk}", "hook"),
    "llm-provider-detail": ("/api/v1/llm/providers/{pk}", "llm_provider"),
    "llm-model-detail": ("/api/v1/llm/models/{pk}", "llm_model"),
    # "rag.<name>": a row of the tenant's RAG world (rag_world.build_rag).
    "rag-config-source-detail": ("/api/v1/rag/config/sources/{pk}", "rag.source"),
    "rag-config-endpoint-detail": ("/api/v1/rag/config/endpoints/{pk}", "rag.endpoint"),
    "rag-config-endpoint-reindex": ("/api/v1/rag/config/endpoints/{pk}/reindex", "rag.endpoint"),
    "rag-config-embedding-model-detail": (
        "/api/v1/rag/config/embedding-models/{pk}",
        "rag.embedding_model",
    ),
}
# Routes with no object in the path; each has its own attack below.
OTHER_ROUTES = {
    "current-tenant": "/api/v1/tenant",  # test_current_tenant_is_always_the_keys_tenant
    "rule-dry-run": "/api/v1/rules/dry-run",  # test_dry_run_lists_only_the_callers_triggers
    "webhook": "/api/v1/webhooks/{source}",  # test_webhook_* attacks
    "llm-usage": "/api/v1/llm/usage",  # test_llm_usage_report_counts_only_the_callers_calls
    "llm-chat": "/api/v1/llm/chat",  # test_llm_chat_reaches_only_the_callers_provider
    # RAG routes address endpoints and sources by slug; attacks in test_rag_isolation.py.
    "rag-query": "/api/v1/rag/support/query",
    "rag-answer": "/api/v1/rag/support/answer",
    "rag-health": "/api/v1/rag/support/health",
    "rag-source-detail": "/api/v1/rag/sources/docs",
    "rag-source-sync": "/api/v1/rag/sources/docs/sync",
    "rag-document-push": "/api/v1/rag/sources/docs/documents",
    "rag-document-delete": "/api/v1/rag/sources/docs/documents/shared.md",
    # Data chat: datasets by slug, sessions by id; attacks in tests/automate_datachat/test_api.py
    # (test_a_dataset_of_another_tenant_is_not_found, test_sessions_and_messages_of_another_...)
    # and tests/automate_datachat/test_isolation.py (tenant B's rows never reach A).
    "datachat-ask": "/api/v1/datachat/shop/ask",
    "datachat-sql": "/api/v1/datachat/shop/sql",
    "datachat-examples": "/api/v1/datachat/shop/examples",
    "datachat-example": "/api/v1/datachat/shop/examples/{pk}",
    "datachat-sessions": "/api/v1/datachat/sessions",
    "datachat-messages": "/api/v1/datachat/sessions/{pk}/messages",
    "datachat-chart": "/api/v1/datachat/sessions/{pk}/messages/{pk}/chart.svg",
    "datachat-results": "/api/v1/datachat/sessions/{pk}/messages/{pk}/results.csv",
    # MCP: servers and tools by slug/id; attacks in tests/mcp_bridge/test_api.py
    # (test_another_tenants_server_is_a_normalized_404, test_another_tenants_tool_is_a_404).
    "mcp-server-list": "/api/v1/mcp/servers",
    "mcp-server-detail": "/api/v1/mcp/servers/shared",
    "mcp-server-health": "/api/v1/mcp/servers/shared/health",
    "mcp-server-sync": "/api/v1/mcp/servers/shared/sync",
    "mcp-tool-list": "/api/v1/mcp/tools",
    "mcp-tool-detail": "/api/v1/mcp/tools/{pk}",
    "mcp-tool-approve": "/api/v1/mcp/tools/{pk}/approve",
    "mcp-tool-reject": "/api/v1/mcp/tools/{pk}/reject",
    # Modal: attacks in tests/automate_modal/test_api.py
    # (test_another_tenants_endpoint_and_jobs_are_not_found); the callback is signed, not keyed
    # (tests/automate_modal/test_callbacks.py: forged, expired, replayed and stale refused).
    "modal-jobs": "/api/v1/modal/gpu/jobs",
    "modal-job": "/api/v1/modal/jobs/{pk}",
    "modal-job-cancel": "/api/v1/modal/jobs/{pk}/cancel",
    "modal-job-logs": "/api/v1/modal/jobs/{pk}/logs",
    "modal-callback": "/api/v1/modal/callback/{pk}",
    # Widgets: minting needs widgets:mint on a key of the embed's tenant; attacks in
    # tests/widgets/test_tenancy.py (test_a_key_of_another_tenant_cannot_mint_for_the_embed).
    "widget-tokens": "/api/v1/widgets/pk_shared/tokens",
}
# Filters each list accepts: every one is tried, since a filter can bypass the tenant scope.
LIST_FILTERS = {
    "api-key-list": [{}],
    "budget-list": [{}, {"scope_type": "workflow"}, {"scope_id": "orders"}],
    "event-list": [{}, {"type": SHARED_EVENT_TYPE}],
    "execution-list": [
        {},
        {"status": "waiting"},
        {"status": "completed"},
        {"workflow": "approval"},
        {"workflow": "orders"},
    ],
    "llm-prompt-list": [{}],
    "automation-list": [{}],
    "trigger-list": [{}, {"automation": "orders"}, {"event_type": SHARED_EVENT_TYPE}],
    "webhook-source-list": [{}],
    "llm-provider-list": [{}],
    "llm-model-list": [{}, {"provider": "main"}],
    "rag-config-source-list": [{}],
    "rag-config-endpoint-list": [{}],
    "rag-config-embedding-model-list": [{}],
}
METHODS = ["get", "post", "put", "patch", "delete"]
BODIES = {"post": {"name": SHARED_SIGNAL, "payload": {"approved": True}}}

# What an attacker adds to a request made with A's key, hoping to switch tenant.
FORGERIES: dict[str, dict[str, Any]] = {
    "plain": {"headers": {}, "params": {}},
    "x-tenant-slug": {"headers": {"HTTP_X_TENANT": "globex"}, "params": {}},
    "x-tenant-id": {
        "headers": {"HTTP_X_TENANT": "{b_pk}", "HTTP_X_TENANT_ID": "{b_pk}"},
        "params": {},
    },
    "query-params": {"headers": {}, "params": {"tenant": "globex", "tenant_id": "{b_pk}"}},
}


def _api_route_names() -> dict[str, str]:
    """name -> pattern of every route under /api/v1/ in the project's URL conf."""
    found: dict[str, str] = {}

    def walk(patterns: list[Any], prefix: str) -> None:
        for entry in patterns:
            if isinstance(entry, URLResolver):
                walk(entry.url_patterns, prefix + str(entry.pattern))
            elif isinstance(entry, URLPattern):
                full = prefix + str(entry.pattern).lstrip("^")
                if full.lstrip("^").startswith(API_PREFIX):
                    found[entry.name or f"<unnamed {full}>"] = full

    walk(get_resolver().url_patterns, "")
    return found


def _fill(value: str, world: World) -> str:
    return value.replace("{b_pk}", str(world.b.tenant.pk))


def _forged_client(world: World, forgery: str) -> tuple[APIClient, dict[str, str]]:
    spec = FORGERIES[forgery]
    headers = {k: _fill(v, world) for k, v in spec["headers"].items()}
    params = {k: _fill(v, world) for k, v in spec["params"].items()}
    return world.a.client(**headers), params


def _target(state: Any, attr: str) -> Any:
    """The object a DETAIL_ROUTES entry addresses: an attribute, or ``rag.<name>``."""
    if attr.startswith("rag."):
        return state.extra["rag"][attr.removeprefix("rag.")]
    return getattr(state, attr)


def _snapshot(obj: models.Model) -> dict[str, Any]:
    return type(obj)._base_manager.filter(pk=obj.pk).values().get()


# Tenant-owned configuration an attack must leave as it was.
TENANT_MODELS = (
    Prompt, PromptVersion, PromptLabel, Automation, Trigger, WebhookSource, LLMProvider,
    LLMModelConfig, KnowledgeSource, RAGEndpoint, EmbeddingModel, IndexVersion,
)  # fmt: skip


def _b_state(world: World) -> dict[str, Any]:
    b = world.b
    return {
        "keys": list(APIKey.objects.filter(tenant=b.tenant).values().order_by("pk")),
        "events": list(Event.objects.filter(tenant=b.tenant).values().order_by("pk")),
        "runs": list(Execution.objects.filter(tenant=b.tenant).values().order_by("pk")),
        **{
            model.__name__: list(model.objects.filter(tenant=b.tenant).values().order_by("pk"))
            for model in TENANT_MODELS
        },
        "versions": list(
            WorkflowVersion.objects.filter(automation__tenant=b.tenant).values().order_by("pk")
        ),
    }


def _leaked(world: World, text: str) -> set[str]:
    return {pk for pk in world.b.ids() if pk in text}


def _all_pages(client: APIClient, path: str, params: dict[str, str]) -> tuple[list[int], str]:
    statuses, texts = [], []
    response = client.get(path, params)
    while True:
        statuses.append(response.status_code)
        body = response.json()
        # Only the rows: "next" echoes the attacker's own query string (B's tenant id).
        texts.append(json.dumps(body.get("results", body)))
        following = body.get("next") if response.status_code == 200 else None
        if not following:
            return statuses, "\n".join(texts)
        response = client.get(following)


# -- the route inventory -------------------------------------------------------------------------


def test_every_api_route_has_an_isolation_attack():
    declared = set(LIST_ROUTES) | set(DETAIL_ROUTES) | set(OTHER_ROUTES)
    assert set(_api_route_names()) == declared, (
        "A route under /api/v1/ was added or removed: add it to LIST_ROUTES, DETAIL_ROUTES or "
        "OTHER_ROUTES (with an attack) in tests/automate_core/security/test_api_isolation.py"
    )
    assert set(LIST_FILTERS) == set(LIST_ROUTES)


@pytest.mark.parametrize(
    ("name", "path"),
    [
        *LIST_ROUTES.items(),
        *((n, p.format(pk=uuid.uuid4())) for n, (p, _) in DETAIL_ROUTES.items()),
    ],
)
def test_declared_paths_resolve_to_their_route(name, path):
    assert resolve(path).url_name == name
    assert resolve(path + "/").url_name == name  # the optional trailing slash, too


# -- lists -----------------------------------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("name", LIST_ROUTES)
def test_list_shows_none_of_the_other_tenants_rows(world, name, forgery):
    client, extra = _forged_client(world, forgery)
    mine_seen = set()
    for filters in LIST_FILTERS[name]:
        statuses, text = _all_pages(client, LIST_ROUTES[name], {**filters, **extra, "limit": 2})
        assert set(statuses) == {200}
        assert not _leaked(world, text), f"{name} {filters} shows tenant B's rows"
        mine_seen |= {pk for pk in world.a.ids() if pk in text}
    assert mine_seen, f"{name} showed none of A's own rows: the attack proves nothing"


# -- details and actions ---------------------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
@pytest.mark.parametrize("name", DETAIL_ROUTES)
def test_detail_and_actions_on_other_tenants_object_are_404(world, name, forgery):
    template, attr = DETAIL_ROUTES[name]
    target = _target(world.b, attr)
    client, extra = _forged_client(world, forgery)
    before, before_all = _snapshot(target), _b_state(world)
    suffix = "?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""
    theirs = template.format(pk=target.pk) + suffix
    missing = template.format(pk=uuid.uuid4()) + suffix
    supported = set(resolve(template.format(pk=target.pk)).func.actions)
    assert supported, f"{name}: no methods found on the view"

    for method in METHODS:
        body = BODIES.get(method)
        got = getattr(client, method)(theirs, body, format="json")
        absent = getattr(client, method)(missing, body, format="json")
        where = f"{method.upper()} {name}"
        assert got.status_code == absent.status_code, f"{where}: B's id is told apart"
        if method in supported:
            assert got.status_code == 404, f"{where} on B's object: {got.status_code}"
        else:
            assert got.status_code == 405, f"{where}: {got.status_code}"
        assert not _leaked(world, got.content.decode()), f"{where} leaks B's ids"

    run_until_idle()
    assert _snapshot(target) == before
    assert _b_state(world) == before_all
    assert APIKey.authenticate(world.b.raw_key) is not None


def test_own_objects_are_reachable_so_the_404s_mean_something(world):
    client = world.a.client()
    for name, (template, attr) in DETAIL_ROUTES.items():
        if "get" in resolve(template.format(pk=uuid.uuid4())).func.actions:
            response = client.get(template.format(pk=_target(world.a, attr).pk))
            assert response.status_code == 200, name


# -- creation cannot target the other tenant ---------------------------------------------------


def test_ingest_with_other_tenants_idempotency_key_and_tenant_field_stays_in_own_tenant(world):
    before = _b_state(world)
    response = world.a.client(HTTP_X_TENANT="globex").post(
        "/api/v1/events",
        {
            "type": SHARED_EVENT_TYPE,
            # The event A sent with this key (a reused key with another payload is a 409).
            "payload": {"amount": 50},
            "idempotency_key": SHARED_IDEMPOTENCY_KEY,
            "tenant": str(world.b.tenant.pk),
            "tenant_id": str(world.b.tenant.pk),
        },
        format="json",
    )
    assert response.status_code == 202
    body = response.json()
    assert body["event_id"] != str(world.b.event.pk)
    # A already used the same key while building the world: it gets its own event back.
    assert body["event_id"] == str(world.a.event.pk) and body["created"] is False
    fresh = world.a.client().post(
        "/api/v1/events",
        {"type": SHARED_EVENT_TYPE, "payload": {"amount": 5000}, "tenant": str(world.b.tenant.pk)},
        format="json",
    )
    assert Event.objects.get(pk=fresh.json()["event_id"]).tenant_id == world.a.tenant.pk
    run_until_idle()
    assert _b_state(world) == before


def test_issued_key_belongs_to_the_callers_tenant_whatever_the_body_says(world):
    before = _b_state(world)
    response = world.a.client(HTTP_X_TENANT="globex").post(
        "/api/v1/api-keys",
        {"name": "sneaky", "tenant": str(world.b.tenant.pk), "tenant_id": str(world.b.tenant.pk)},
        format="json",
    )
    assert response.status_code == 201
    issued = APIKey.objects.get(pk=response.json()["id"])
    assert issued.tenant_id == world.a.tenant.pk
    assert APIKey.authenticate(response.json()["key"]).tenant_id == world.a.tenant.pk
    assert _b_state(world) == before


CONFIG_CREATES = [
    ("/api/v1/automations", {"name": "Sneaky"}, Automation),
    ("/api/v1/triggers", {"name": "sneaky", "event_type": "x", "automation": "orders"}, Trigger),
    ("/api/v1/webhook-sources", {"source": "sneaky", "secret_ref": "X"}, WebhookSource),
    (
        "/api/v1/llm/providers",
        {"name": "Sneaky", "provider_type": "openai", "config": {"api_key": "$secret:K"}},
        LLMProvider,
    ),
    ("/api/v1/rag/config/embedding-models", {"name": "Sneaky"}, EmbeddingModel),
]


@pytest.mark.parametrize(("path", "body", "model"), CONFIG_CREATES)
def test_created_config_belongs_to_the_callers_tenant_whatever_the_body_says(
    world, path, body, model
):
    before = _b_state(world)
    b_pk = str(world.b.tenant.pk)
    response = world.a.client(HTTP_X_TENANT="globex").post(
        path, {**body, "tenant": b_pk, "tenant_id": b_pk}, format="json"
    )
    assert response.status_code == 201, response.content
    assert model.objects.get(pk=response.json()["id"]).tenant_id == world.a.tenant.pk
    assert _b_state(world) == before


# -- routes without an object in the path --------------------------------------------------------


@pytest.mark.parametrize("forgery", FORGERIES)
def test_current_tenant_is_always_the_keys_tenant(world, forgery):
    client, extra = _forged_client(world, forgery)
    response = client.get("/api/v1/tenant", extra)
    assert response.status_code == 200
    assert response.json()["id"] == str(world.a.tenant.pk)
    assert not _leaked(world, response.content.decode())


@pytest.mark.parametrize("forgery", FORGERIES)
def test_dry_run_lists_only_the_callers_triggers(world, forgery):
    client, extra = _forged_client(world, forgery)
    suffix = "?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""
    response = client.post(
        "/api/v1/rules/dry-run" + suffix,
        {"event_type": SHARED_EVENT_TYPE, "payload": {"amount": 5000}},
        format="json",
    )
    assert response.status_code == 200
    results = response.json()["results"]
    assert {r["trigger"] for r in results} == {"shared", "acme-private-trigger"}
    assert {r["automation"] for r in results} == {"orders", world.a.private_automation.slug}
    text = response.content.decode()
    assert "globex" not in text.lower() and not _leaked(world, text)


def _metered_llm_call(tenant: Any, input_tokens: int) -> None:
    from automate_llm.metering import CallContext, start_call
    from automate_llm.models import LLMProvider
    from automate_llm.types import ChatMessage, ChatOptions, ChatResult, Usage

    provider = LLMProvider.objects.create(tenant=tenant, name="OpenAI", provider_type="openai")
    call = start_call(
        tenant=tenant,
        provider=provider,
        model="gpt-4o",
        messages=[ChatMessage(role="user", content="hello")],
        options=ChatOptions(model="gpt-4o", max_tokens=10),
        context=CallContext(workflow="orders", idempotency_key=SHARED_IDEMPOTENCY_KEY),
    )
    usage = Usage(input_tokens=input_tokens, output_tokens=1)
    result = ChatResult(text="hi", usage=usage)
    call.succeeded(result, attempts=1, provider=provider, model="gpt-4o")
    run_until_idle()  # the llm.record job writes the call's rows


@pytest.mark.parametrize("forgery", FORGERIES)
def test_llm_usage_report_counts_only_the_callers_calls(world, forgery):
    _metered_llm_call(world.a.tenant, input_tokens=1_111)
    _metered_llm_call(world.b.tenant, input_tokens=9_999_999)
    client, extra = _forged_client(world, forgery)
    for group_by in ("day", "model", "day,model"):
        response = client.get("/api/v1/llm/usage", {"group_by": group_by, **extra})
        assert response.status_code == 200
        body = response.json()
        assert body["totals"]["calls"] == 1, group_by
        assert body["totals"]["input_tokens"] == 1_111, group_by
        text = response.content.decode()
        assert "9999999" not in text and not _leaked(world, text)


@pytest.mark.parametrize("forgery", FORGERIES)
def test_llm_chat_reaches_only_the_callers_provider(world, forgery, settings, monkeypatch):
    """Both tenants have provider ``main`` and model config ``fast``, each on its own server:
    whatever A names or forges, only A's server is called, and every record is A's."""
    from automate_core.testing.fake_network import configure_egress
    from automate_llm.models import LLMProvider, LLMRequest
    from automate_llm.testing import OpenAIWire, Reply

    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])
    monkeypatch.setenv("AUTOMATE_SECRET_OPENAI_KEY", "sk-isolation-0123456789")
    client, extra = _forged_client(world, forgery)
    suffix = "?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""
    asks = [{}, {"provider": "main"}, {"model": "fast"}, {"provider": "main", "model": "fast"}]
    with OpenAIWire() as mine, OpenAIWire() as theirs:
        for state, server in ((world.a, mine), (world.b, theirs)):
            server.api_key = "sk-isolation-0123456789"
            server.script(*[Reply(text=f"from {state.tenant.slug}")] * len(asks))
            config = {**state.llm_provider.config, "base_url": server.base_url}
            LLMProvider.objects.filter(pk=state.llm_provider.pk).update(config=config)
        b_calls = LLMRequest.objects.filter(tenant=world.b.tenant).count()
        b_budget = _snapshot(world.b.budget)
        for ask in asks:
            body = {
                "messages": [{"role": "user", "content": "hi"}],
                "tenant": str(world.b.tenant.pk),
                "end_user": str(world.b.tenant.pk),
                **ask,
            }
            response = client.post(f"/api/v1/llm/chat{suffix}", body, format="json")
            assert response.status_code == 200, (ask, response.content)
            assert response.json()["text"] == "from acme", ask
            assert not _leaked(world, response.content.decode())
        assert theirs.requests == [] and len(mine.requests) == len(asks)
    run_until_idle()  # write the calls' records before counting whose they are
    assert LLMRequest.objects.filter(tenant=world.a.tenant).count() >= len(asks)
    assert LLMRequest.objects.filter(tenant=world.b.tenant).count() == b_calls
    assert _snapshot(world.b.budget) == b_budget


@pytest.mark.parametrize("forgery", FORGERIES)
def test_prompt_slugs_resolve_in_the_callers_tenant_only(world, forgery):
    """Both tenants have ``support-reply``; slugs reach A's prompt or nothing."""
    client, extra = _forged_client(world, forgery)
    suffix = "?" + "&".join(f"{k}={v}" for k, v in extra.items()) if extra else ""
    before = _b_state(world)
    base = "/api/v1/llm/prompts"
    mine = client.get(f"{base}/support-reply{suffix}")
    assert mine.status_code == 200 and mine.json()["id"] == str(world.a.prompt.pk)
    rendered = client.post(
        f"{base}/support-reply/render{suffix}", {"variables": {"q": "?"}}, format="json"
    )
    assert rendered.json()["messages"][0]["content"] == "You work for acme."
    draft = client.get(f"{base}/support-reply/versions/2{suffix}")
    assert draft.json()["id"] == str(world.a.prompt_draft.pk)
    theirs = world.b.private_prompt.slug
    attacks = [
        ("get", f"{base}/{theirs}", None),
        ("patch", f"{base}/{theirs}", {"name": "pwned"}),
        ("delete", f"{base}/{theirs}", None),
        ("get", f"{base}/{theirs}/versions", None),
        ("post", f"{base}/{theirs}/versions", {"user_template": "pwned"}),
        ("get", f"{base}/{theirs}/versions/1", None),
        ("patch", f"{base}/{theirs}/versions/1", {"user_template": "pwned"}),
        ("post", f"{base}/{theirs}/versions/1/publish", {"label": "production"}),
        ("post", f"{base}/{theirs}/labels", {"name": "production", "version": 1}),
        ("post", f"{base}/{theirs}/render", {"variables": {}}),
    ]
    for method, path, body in attacks:
        response = getattr(client, method)(path + suffix, body, format="json")
        assert response.status_code == 404, (method, path, response.status_code)
        assert not _leaked(world, response.content.decode())
    assert _b_state(world) == before


def _webhook(source: str, body: dict[str, Any], secret: str, **headers: str):
    raw = json.dumps(body).encode()
    ts = str(int(time.time()))
    return APIClient().post(
        f"/api/v1/webhooks/{source}",
        data=raw,
        content_type="application/json",
        HTTP_X_AUTOMATE_TIMESTAMP=ts,
        HTTP_X_AUTOMATE_SIGNATURE=sign(secret, ts, raw),
        HTTP_X_AUTOMATE_EVENT=SHARED_EVENT_TYPE,
        **headers,
    )


def test_webhook_to_other_tenants_source_signed_with_own_secret_is_refused(world):
    before = _b_state(world)
    response = _webhook(world.b.hook.source, {"amount": 5000}, world.a.hook_secret)
    assert response.status_code == 401
    unsigned = world.a.client().post(
        f"/api/v1/webhooks/{world.b.hook.source}", {"amount": 1}, format="json"
    )
    assert unsigned.status_code == 401
    run_until_idle()
    assert _b_state(world) == before


def test_webhook_lands_in_the_sources_tenant_whatever_the_request_claims(world):
    before = _b_state(world)
    response = _webhook(
        world.a.hook.source,
        {"amount": 5000, "tenant": str(world.b.tenant.pk), "tenant_id": str(world.b.tenant.pk)},
        world.a.hook_secret,
        HTTP_X_TENANT="globex",
        HTTP_AUTHORIZATION=f"Bearer {world.b.raw_key}",
    )
    assert response.status_code == 202
    event = Event.objects.get(pk=response.json()["event_id"])
    assert event.tenant_id == world.a.tenant.pk
    run_until_idle()
    started = Execution.objects.filter(event=event)
    assert started.exists() and set(started.values_list("tenant_id", flat=True)) == {
        world.a.tenant.pk
    }
    assert _b_state(world) == before


# -- session users -------------------------------------------------------------------------------


SESSION_HEADERS = {
    "none": {},
    "own-slug": {"HTTP_X_TENANT": "acme"},
    "other-slug": {"HTTP_X_TENANT": "globex"},
    "other-id": {"HTTP_X_TENANT": "{b_pk}"},
}


def _session_client(world: World, user: Any, variant: str) -> APIClient:
    client = APIClient()
    client.force_login(user)
    client.credentials(**{k: _fill(v, world) for k, v in SESSION_HEADERS[variant].items()})
    return client


@pytest.mark.parametrize("variant", SESSION_HEADERS)
def test_session_member_of_a_gets_nothing_of_b(world, member_of_a, variant):
    client = _session_client(world, member_of_a, variant)
    acts_for_a = variant in ("none", "own-slug")
    before = _b_state(world)
    for name, path in LIST_ROUTES.items():
        for filters in LIST_FILTERS[name]:
            response = client.get(path, filters)
            assert response.status_code == (200 if acts_for_a else 403), (name, filters)
            assert not _leaked(world, response.content.decode()), (name, filters)
    tenant = client.get("/api/v1/tenant")
    if acts_for_a:
        assert tenant.json()["id"] == str(world.a.tenant.pk)
    else:
        assert tenant.status_code == 403
    for name, (template, attr) in DETAIL_ROUTES.items():
        theirs = template.format(pk=_target(world.b, attr).pk)
        missing = template.format(pk=uuid.uuid4())
        for method in METHODS:
            body = BODIES.get(method)
            got = getattr(client, method)(theirs, body, format="json")
            absent = getattr(client, method)(missing, body, format="json")
            assert got.status_code == absent.status_code, (name, method)
            assert got.status_code in (403, 404, 405), (name, method, got.status_code)
            assert not _leaked(world, got.content.decode()), (name, method)
    dry = client.post(
        "/api/v1/rules/dry-run", {"event_type": SHARED_EVENT_TYPE, "payload": {}}, format="json"
    )
    assert not _leaked(world, dry.content.decode()) and "globex" not in dry.content.decode()
    run_until_idle()
    assert _b_state(world) == before


def test_session_user_without_membership_gets_nothing(world, django_user_model):
    stranger = django_user_model.objects.create_user("mallory", "m@example.com", "pw")
    client = APIClient()
    client.force_login(stranger)
    for slug in (None, "acme", "globex"):
        client.credentials(**({"HTTP_X_TENANT": slug} if slug else {}))
        for path in LIST_ROUTES.values():
            assert client.get(path).status_code == 403


# -- dead keys -----------------------------------------------------------------------------------


def _dead_key(world: World, how: str) -> str:
    key, raw = APIKey.issue(tenant=world.a.tenant, name=f"dead-{how}")
    if how == "revoked":
        key.revoke()
    elif how == "expired":
        key.expires_at = timezone.now() - timedelta(seconds=1)
        key.save()
    elif how == "tenant-inactive":
        type(world.a.tenant).objects.filter(pk=world.a.tenant.pk).update(is_active=False)
    elif how == "tampered":
        raw = raw[:-2] + ("AA" if not raw.endswith("AA") else "BB")
    return raw


# Routes that check a signature instead of a key.
SIGNED_ROUTES = {"webhook", "modal-callback"}
# Every route that authenticates with a key; all methods are tried.
AUTHENTICATED_ROUTES = {
    **LIST_ROUTES,
    **{name: template for name, (template, _) in DETAIL_ROUTES.items()},
    "current-tenant": OTHER_ROUTES["current-tenant"],
    "rule-dry-run": OTHER_ROUTES["rule-dry-run"],
    "llm-usage": OTHER_ROUTES["llm-usage"],
    "llm-chat": OTHER_ROUTES["llm-chat"],
    **{
        name: path
        for name, path in OTHER_ROUTES.items()
        if name.startswith(("rag-", "datachat-", "mcp-", "modal-", "widget-"))
        and name not in SIGNED_ROUTES
    },
}


@pytest.mark.parametrize("how", ["revoked", "expired", "tenant-inactive", "tampered"])
def test_dead_key_gets_401_everywhere(world, how):
    raw = _dead_key(world, how)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}", HTTP_X_TENANT="globex")
    assert set(AUTHENTICATED_ROUTES) == set(_api_route_names()) - SIGNED_ROUTES
    before = _b_state(world)
    for name, template in AUTHENTICATED_ROUTES.items():
        path = template.format(pk=world.b.waiting_run.pk)
        for method in METHODS:
            response = getattr(client, method)(path, BODIES.get(method), format="json")
            assert response.status_code == 401, (how, name, method, response.status_code)
            assert not _leaked(world, response.content.decode())
    run_until_idle()
    assert _b_state(world) == before


def test_webhook_secret_is_looked_up_in_the_sources_tenant(world, monkeypatch):
    from automate_core.api import runtime

    asked: list[Any] = []
    real = runtime.get_secret

    def spy(key: str, *, tenant: Any = None) -> str:
        asked.append(getattr(tenant, "pk", tenant))
        return real(key, tenant=tenant)

    monkeypatch.setattr(runtime, "get_secret", spy)
    response = _webhook(world.b.hook.source, {"amount": 1}, world.b.hook_secret)
    assert response.status_code == 202
    assert asked == [world.b.tenant.pk]
