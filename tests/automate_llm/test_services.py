"""The services other apps call, end to end against both wire servers: resolution of the
tenant's provider and model, the gateway, and metering (budget hold, LLMRequest, LLMUsage)."""

from __future__ import annotations

from decimal import Decimal

import pytest
from pydantic import BaseModel

from automate_core.errors import InvalidInputError
from automate_core.governance.budgets import BudgetExceeded
from automate_core.governance.models import Budget
from automate_core.testing.runtime import run_until_idle
from automate_llm import services
from automate_llm.errors import (
    NoProviderConfigured,
    ProviderBadResponse,
    ProviderRejected,
    StructuredOutputInvalid,
)
from automate_llm.metering import CallContext
from automate_llm.models import LLMModelConfig, LLMProvider, LLMRequest, LLMUsage
from automate_llm.pricing import price_for
from automate_llm.testing import CutStream, Embeddings, Rejected, Reply, ServerError
from automate_llm.testing.providers import WIRE_API_KEY, WIRE_SECRET
from automate_llm.types import Usage

ASK = [{"role": "user", "content": "What is 2 + 2?"}]


@pytest.fixture(autouse=True)
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


def only_request(tenant) -> LLMRequest:
    """The tenant's one call record, once the queued records are written."""
    run_until_idle()
    (request,) = LLMRequest.objects.for_tenant(tenant)
    return request


# -- no provider -------------------------------------------------------------------------------


def test_chat_without_any_provider_says_none_is_configured(tenant) -> None:
    with pytest.raises(NoProviderConfigured) as caught:
        services.chat(tenant=tenant, messages=ASK)

    assert caught.value.status_code == 503
    assert "No LLM provider is configured for this tenant" in caught.value.message
    assert not LLMRequest.objects.exists()


@pytest.mark.parametrize("call", ["chat", "stream_chat", "structured", "embed"])
def test_every_entry_point_says_so_without_a_provider(tenant, call) -> None:
    arguments = {"tenant": tenant}
    if call == "embed":
        arguments |= {"texts": ["x"], "model": "text-embedding-3-small"}
    else:
        arguments["messages"] = ASK
    if call == "structured":
        arguments["schema"] = {"type": "object"}

    with pytest.raises(NoProviderConfigured):
        getattr(services, call)(**arguments)


def test_an_unknown_provider_slug_is_named(wire_model, tenant) -> None:
    with pytest.raises(NoProviderConfigured, match="'nope'"):
        services.chat(tenant=tenant, messages=ASK, provider="nope")


def test_another_tenants_provider_is_not_found(wire_provider, other_tenant) -> None:
    with pytest.raises(NoProviderConfigured):
        services.chat(tenant=other_tenant, messages=ASK, provider=wire_provider.slug)


def test_a_default_provider_without_a_model_says_what_is_missing(wire_provider, tenant) -> None:
    with pytest.raises(NoProviderConfigured, match="no default_model"):
        services.chat(tenant=tenant, messages=ASK)


def test_an_inactive_provider_is_not_used(wire_model, wire_provider, tenant) -> None:
    wire_provider.is_active = False
    wire_provider.save()

    with pytest.raises(NoProviderConfigured):
        services.chat(tenant=tenant, messages=ASK)


# -- chat --------------------------------------------------------------------------------------


def test_chat_uses_the_tenant_default_model_and_reports_usage_cost_and_record(
    wire_model, wire, tenant
) -> None:
    wire.script(Reply(text="4", input_tokens=1000, output_tokens=200, cached_tokens=400))

    response = services.chat(tenant=tenant, messages=ASK)

    assert response.text == "4"
    assert (response.provider, response.model) == (wire_model.provider.slug, wire_model.model_id)
    expected_cost = price_for(wire.provider_type, wire_model.model_id).cost(
        Usage(input_tokens=1000, output_tokens=200, cached_tokens=400)
    )
    assert response.usage.model_dump() == {
        "input_tokens": 1000,
        "output_tokens": 200,
        "cached_tokens": 400,
        "cost": expected_cost,
    }
    request = only_request(tenant)
    assert request.pk == response.request_id
    assert (request.success, request.attempts, request.model) == (True, 1, wire_model.model_id)
    assert request.provider_request_id == wire.last.request_id
    assert LLMUsage.objects.get(request=request).cost == expected_cost


def test_a_model_config_slug_selects_its_provider_model_and_defaults(
    make_wire_provider, wire, tenant
) -> None:
    row = make_wire_provider(wire)
    LLMModelConfig.objects.create(
        tenant=tenant, provider=row, name="Fast", slug="fast", model_id="m-fast", max_tokens=42
    )

    services.chat(tenant=tenant, messages=ASK, model="fast")

    assert (wire.last.body["model"], wire.last.body["max_tokens"]) == ("m-fast", 42)


def test_a_model_id_can_be_named_on_a_provider(wire_model, wire, tenant) -> None:
    response = services.chat(
        tenant=tenant, messages=ASK, provider=wire_model.provider.slug, model="m-raw"
    )

    assert response.model == "m-raw"
    assert wire.last.body["model"] == "m-raw"


def test_the_only_active_provider_is_the_default(make_wire_provider, wire, tenant) -> None:
    make_wire_provider(wire, default_model="m-only")

    services.chat(tenant=tenant, messages=ASK)

    assert wire.last.body["model"] == "m-only"


def test_call_options_reach_the_provider(wire_model, wire, tenant) -> None:
    services.chat(
        tenant=tenant,
        messages=ASK,
        max_tokens=9,
        stop=["\n"],
        params={"seed": 7},
        tools=[{"name": "calc", "parameters": {"type": "object", "properties": {}}}],
    )

    body = wire.last.body
    assert (body["max_tokens"], body["seed"]) == (9, 7)
    assert len(body["tools"]) == 1


def test_the_context_idempotency_key_is_sent_and_recorded(wire_model, wire, tenant) -> None:
    context = CallContext(idempotency_key="exec-9:summarize", step_id="summarize")

    services.chat(tenant=tenant, messages=ASK, context=context)

    assert wire.last.headers["idempotency-key"] == "exec-9:summarize"
    request = only_request(tenant)
    assert (request.idempotency_key, request.step_id) == ("exec-9:summarize", "summarize")


def test_fallbacks_of_the_model_config_are_tried_and_recorded(
    make_wire_provider, wire, openai_wire, tenant
) -> None:
    primary = make_wire_provider(wire)
    backup = make_wire_provider(openai_wire, slug="backup")
    LLMModelConfig.objects.create(
        tenant=tenant, provider=backup, name="Backup", slug="backup-model", model_id="gpt-4.1"
    )
    LLMModelConfig.objects.create(
        tenant=tenant,
        provider=primary,
        name="Main",
        slug="main",
        model_id="m-main",
        fallbacks=["missing-slug", "backup-model"],
        is_default=True,
    )
    wire.script(*[ServerError(503)] * 3)
    openai_wire.script(Reply(text="backup answer"))

    response = services.chat(tenant=tenant, messages=ASK)

    assert (response.text, response.provider, response.model) == (
        "backup answer",
        "backup",
        "gpt-4.1",
    )
    assert response.attempts == 4
    request = only_request(tenant)
    assert (request.provider_id, request.model, request.attempts) == (backup.pk, "gpt-4.1", 4)


def test_a_failed_call_is_recorded_with_its_error_and_attempts(wire_model, wire, tenant) -> None:
    wire.script(*[ServerError(500)] * 3)

    with pytest.raises(Exception, match="500"):
        services.chat(tenant=tenant, messages=ASK)

    request = only_request(tenant)
    assert (request.success, request.error_code, request.attempts) == (False, "llm_unavailable", 3)
    assert not LLMUsage.objects.exists()


def test_a_key_echoed_in_a_provider_error_is_not_stored(wire_model, wire, tenant) -> None:
    wire.script(Rejected(401, f"Incorrect API key provided: {WIRE_API_KEY}."))

    with pytest.raises(ProviderRejected):
        services.chat(tenant=tenant, messages=ASK)

    request = only_request(tenant)
    assert "Incorrect API key provided" in request.error_message
    assert WIRE_API_KEY not in request.error_message


def test_an_exhausted_budget_refuses_before_any_request(wire_model, wire, tenant) -> None:
    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )

    with pytest.raises(BudgetExceeded):
        services.chat(tenant=tenant, messages=ASK)

    assert wire.requests == []


def test_invalid_messages_are_invalid_input(wire_model, tenant) -> None:
    with pytest.raises(InvalidInputError) as caught:
        services.chat(tenant=tenant, messages=[{"role": "wizard", "content": "hi"}])

    assert caught.value.details["errors"][0]["loc"] == "role"


def test_invalid_options_are_invalid_input(wire_model, tenant) -> None:
    with pytest.raises(InvalidInputError, match="Invalid call options"):
        services.chat(tenant=tenant, messages=ASK, max_tokens=0)


def test_empty_messages_are_invalid_input(wire_model, tenant) -> None:
    with pytest.raises(InvalidInputError, match="must not be empty"):
        services.chat(tenant=tenant, messages=[])


# -- streaming ---------------------------------------------------------------------------------


def test_stream_chat_yields_chunks_then_records_the_call(wire_model, wire, tenant) -> None:
    wire.script(Reply(text="two plus two is four", input_tokens=50, output_tokens=6))

    stream = services.stream_chat(tenant=tenant, messages=ASK)
    text = "".join(chunk.text for chunk in stream)

    assert text == "two plus two is four"
    assert stream.response is not None
    assert stream.response.usage.input_tokens == 50
    request = only_request(tenant)
    assert (request.pk, request.stream, request.success) == (stream.response.request_id, True, True)


def test_a_stream_has_its_provider_secrets_before_it_is_iterated(
    wire_model, wire, tenant, monkeypatch
) -> None:
    """So its caller can give back its database connection while it waits on the model."""
    wire.script(Reply(text="two plus two is four"))

    stream = services.stream_chat(tenant=tenant, messages=ASK)
    monkeypatch.delenv(f"AUTOMATE_SECRET_{WIRE_SECRET}")

    assert "".join(chunk.text for chunk in stream) == "two plus two is four"


def test_a_stream_over_budget_is_refused_when_it_is_asked_for(wire_model, wire, tenant) -> None:
    Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=10,
    )

    with pytest.raises(BudgetExceeded):
        services.stream_chat(tenant=tenant, messages=ASK)

    assert wire.requests == []


def test_a_broken_stream_charges_what_arrived_and_records_the_failure(
    wire_model, wire, tenant
) -> None:
    wire.script(CutStream(Reply(text="partial answer that breaks"), after=4))

    stream = services.stream_chat(tenant=tenant, messages=ASK)
    received = []
    with pytest.raises(ProviderBadResponse):
        for chunk in stream:
            received.append(chunk.text)

    assert received
    request = only_request(tenant)
    assert (request.success, request.error_code) == (False, "llm_bad_response")
    usage = LLMUsage.objects.get(request=request)
    assert usage.output_tokens > 0
    assert stream.response is None


def test_a_stream_closed_early_is_recorded_as_cancelled(wire_model, wire, tenant) -> None:
    wire.script(Reply(text="a long answer nobody reads to the end", chunk_size=3))

    stream = services.stream_chat(tenant=tenant, messages=ASK)
    next(iter(stream))
    stream.close()

    request = only_request(tenant)
    assert (request.success, request.error_code) == (False, "llm_stream_cancelled")


def test_a_stream_closed_before_it_started_releases_its_hold(wire_model, wire, tenant) -> None:
    limit = Budget.objects.create(
        tenant=tenant,
        scope_type="tenant",
        scope_id=str(tenant.pk),
        period=Budget.Period.TOTAL,
        limit_tokens=100_000,
    )

    services.stream_chat(tenant=tenant, messages=ASK).close()

    limit.refresh_from_db()
    assert (limit.reserved_tokens, limit.spent_tokens) == (0, 0)
    assert only_request(tenant).error_code == "llm_stream_cancelled"
    assert wire.requests == []


# -- structured --------------------------------------------------------------------------------

ANSWER = {
    "type": "object",
    "properties": {"answer": {"type": "integer"}},
    "required": ["answer"],
}


class Answer(BaseModel):
    answer: int


def test_structured_returns_the_validated_value(wire_model, wire, tenant) -> None:
    wire.script(Reply(output={"answer": 4}))

    response = services.structured(tenant=tenant, messages=ASK, schema=ANSWER)

    assert response.value == {"answer": 4}
    assert not response.repaired
    assert response.request_ids == [response.request_id]


def test_structured_with_a_model_class_returns_an_instance(wire_model, wire, tenant) -> None:
    wire.script(Reply(output={"answer": 4}))

    response = services.structured(tenant=tenant, messages=ASK, schema=Answer)

    assert response.value == Answer(answer=4)


def test_a_repaired_structured_answer_records_and_sums_both_calls(wire_model, wire, tenant) -> None:
    wire.script(
        Reply(output={"answer": "four"}, input_tokens=100, output_tokens=10),
        Reply(output={"answer": 4}, input_tokens=150, output_tokens=5),
    )

    response = services.structured(
        tenant=tenant, messages=ASK, schema=ANSWER, context=CallContext(idempotency_key="k")
    )

    assert response.repaired
    assert len(response.request_ids) == 2
    assert (response.usage.input_tokens, response.usage.output_tokens) == (250, 15)
    run_until_idle()
    keys = set(LLMRequest.objects.for_tenant(tenant).values_list("idempotency_key", flat=True))
    assert keys == {"k", "k:repair"}
    costs = LLMUsage.objects.filter(request_id__in=response.request_ids).values_list(
        "cost", flat=True
    )
    assert response.usage.cost == sum(costs, Decimal(0))


def test_structured_output_invalid_after_the_repair_is_raised(wire_model, wire, tenant) -> None:
    wire.script(Reply(output={"answer": "four"}), Reply(output={"answer": "4"}))

    with pytest.raises(StructuredOutputInvalid):
        services.structured(tenant=tenant, messages=ASK, schema=ANSWER)

    run_until_idle()
    assert LLMRequest.objects.for_tenant(tenant).filter(success=True).count() == 2


# -- embeddings --------------------------------------------------------------------------------


def test_embed_returns_vectors_and_records_the_call(
    make_wire_provider, openai_wire, tenant
) -> None:
    make_wire_provider(openai_wire, is_default=True)
    openai_wire.script(Embeddings(dimensions=4, input_tokens=3))

    response = services.embed(tenant=tenant, texts=["a", "b"], model="text-embedding-3-small")

    assert [len(vector) for vector in response.vectors] == [4, 4]
    request = only_request(tenant)
    assert (request.pk, request.model) == (response.request_id, "text-embedding-3-small")
    assert response.usage.input_tokens == 3
    assert response.usage.cost == price_for("openai", "text-embedding-3-small").cost(
        Usage(input_tokens=3)
    )


def test_resolving_a_model_with_fallbacks_reads_the_tenants_models_in_one_query(
    make_wire_provider, wire, openai_wire, tenant, django_assert_num_queries
) -> None:
    primary = make_wire_provider(wire)
    backup = make_wire_provider(openai_wire, slug="backup")
    LLMModelConfig.objects.create(
        tenant=tenant, provider=backup, name="Backup", slug="backup-model", model_id="gpt-4.1"
    )
    LLMModelConfig.objects.create(
        tenant=tenant,
        provider=primary,
        name="Main",
        slug="main",
        model_id="m-main",
        fallbacks=["backup-model"],
    )

    with django_assert_num_queries(1):
        targets = services.resolve_targets(tenant=tenant, model="main")

    assert [(t.provider, t.model) for t in targets] == [(primary, "m-main"), (backup, "gpt-4.1")]
    assert all(t.provider.tenant is tenant for t in targets)  # no query for the tenant either


def test_a_model_config_pointing_at_another_tenants_provider_is_not_used(
    make_wire_provider, wire, tenant, other_tenant
) -> None:
    make_wire_provider(wire, default_model="mine")
    theirs = make_wire_provider(wire, slug="theirs", tenant_=other_tenant)
    LLMModelConfig.objects.bulk_create(  # as a raw write could: clean() would refuse it
        [
            LLMModelConfig(
                tenant=tenant, provider=theirs, name="Stolen", slug="stolen", model_id="m-b"
            )
        ]
    )

    services.chat(tenant=tenant, messages=ASK, model="stolen")

    assert wire.last.body["model"] == "stolen"  # a model id on the tenant's own provider
    assert only_request(tenant).provider.tenant_id == tenant.pk


def test_embed_needs_texts(tenant) -> None:
    with pytest.raises(InvalidInputError):
        services.embed(tenant=tenant, texts=[], model="m")


def test_services_models_are_tenant_scoped(make_wire_provider, wire, tenant, other_tenant) -> None:
    mine = make_wire_provider(wire, default_model="mine")
    make_wire_provider(wire, slug="theirs", tenant_=other_tenant, default_model="theirs")

    services.chat(tenant=tenant, messages=ASK)

    assert wire.last.body["model"] == "mine"
    assert only_request(tenant).provider_id == mine.pk
    assert not LLMProvider.objects.for_tenant(tenant).filter(slug="theirs").exists()
