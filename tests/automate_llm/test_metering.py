"""Metering against real budgets on Postgres: hold before the call, settle to the actual usage,
release on failure, charge a broken stream's partial usage, and record without content."""

from __future__ import annotations

import json
import uuid
from decimal import Decimal

import pytest
from django.db import transaction
from django.test import override_settings

from automate_core.governance import audit
from automate_core.governance.budgets import BudgetExceeded
from automate_core.governance.models import AuditLog, Budget, BudgetReservation
from automate_core.governance.redaction import REDACTED, secret_scope
from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.testing.runtime import run_until_idle
from automate_llm import metering
from automate_llm.errors import ProviderBadResponse, ProviderUnavailable
from automate_llm.metering import CallContext, ChargedUsage, start_call
from automate_llm.models import LLMProvider, LLMRequest, LLMUsage, Prompt, PromptVersion
from automate_llm.pricing import price_for
from automate_llm.tokens import count_tokens
from automate_llm.types import ChatMessage, ChatOptions, ChatResult, ToolCall, Usage

pytestmark = pytest.mark.django_db

MESSAGES = [
    ChatMessage(role="system", content="You answer questions about invoices."),
    ChatMessage(role="user", content="What is the total of invoice 42?"),
]


@pytest.fixture
def openai(tenant) -> LLMProvider:
    return LLMProvider.objects.create(tenant=tenant, name="OpenAI", provider_type="openai")


@pytest.fixture
def anthropic(tenant) -> LLMProvider:
    return LLMProvider.objects.create(tenant=tenant, name="Anthropic", provider_type="anthropic")


def budget(tenant: Tenant, scope_type: str = "tenant", scope_id: str = "", **limits) -> Budget:
    return Budget.objects.create(
        tenant=tenant,
        scope_type=scope_type,
        scope_id=scope_id or str(tenant.pk),
        period=Budget.Period.TOTAL,
        **limits,
    )


def counters(row: Budget) -> tuple[int, Decimal, int, Decimal]:
    row.refresh_from_db()
    return row.spent_tokens, row.spent_cost, row.reserved_tokens, row.reserved_cost


def start(tenant, provider, *, model="gpt-4o", max_tokens=100, messages=MESSAGES, **context):
    return start_call(
        tenant=tenant,
        provider=provider,
        model=model,
        messages=messages,
        options=ChatOptions(model=model, max_tokens=max_tokens),
        context=CallContext(**context),
    )


def answer(text="The total is 118.00 EUR.", usage=None, **fields) -> ChatResult:
    return ChatResult(
        text=text, usage=usage or Usage(), model="gpt-4o", provider="openai", **fields
    )


def stored(charged: ChargedUsage) -> LLMUsage:
    """The usage row of a finished call, once its ``llm.record`` job has written it."""
    run_until_idle()
    return LLMUsage.objects.select_related("request").get(request_id=charged.request_id)


def llm_audit_rows(tenant) -> list[AuditLog]:
    return list(AuditLog.objects.filter(tenant=tenant, action="llm.call").order_by("seq"))


# -- reserve ------------------------------------------------------------------------------------


def test_start_holds_the_prompt_estimate_plus_max_tokens_and_their_worst_cost(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000, limit_cost=Decimal("1.00"))

    call = start(tenant, openai, max_tokens=100)

    price = price_for("openai", "gpt-4o")
    worst = (call.estimate.tokens * price.input + 100 * price.output) / 1_000_000
    assert call.estimate.tokens > 10
    assert counters(limits) == (0, Decimal(0), call.estimate.tokens + 100, call.reserved_cost)
    assert call.reserved_cost == worst.quantize(Decimal("0.000001"))


def test_max_tokens_defaults_to_the_setting(tenant, openai):
    limits = budget(tenant, limit_tokens=100_000)

    with override_settings(AUTOMATE_LLM={"DEFAULT_MAX_TOKENS": 777}):
        call = start(tenant, openai, max_tokens=None)

    assert call.max_tokens == 777
    assert counters(limits)[2] == call.estimate.tokens + 777


def test_over_budget_call_is_refused_and_recorded_without_holding(tenant, openai):
    limits = budget(tenant, limit_tokens=50)

    with pytest.raises(BudgetExceeded) as refused:
        start(tenant, openai, max_tokens=100, idempotency_key="exec-1:ask", step_id="ask")

    assert refused.value.status_code == 402
    assert counters(limits) == (0, Decimal(0), 0, Decimal(0))
    record = LLMRequest.objects.get(tenant=tenant)
    assert (record.error_code, record.success, record.attempts) == ("budget_exceeded", False, 0)
    assert record.response["budget"]["scope_type"] == "tenant"
    assert not LLMUsage.objects.exists()
    (row,) = llm_audit_rows(tenant)
    assert row.data["error_code"] == "budget_exceeded" and row.data["cost"] == "0"


def test_cost_limit_refuses_a_call_whose_worst_case_does_not_fit(tenant, openai):
    budget(tenant, limit_cost=Decimal("0.000500"))  # 100 output tokens of gpt-4o cost 0.001

    with pytest.raises(BudgetExceeded):
        start(tenant, openai, max_tokens=100)


def test_every_scope_of_the_call_is_held(tenant, openai):
    key_id = uuid.uuid4()
    rows = [
        budget(tenant, limit_tokens=10_000),
        budget(tenant, "api_key", str(key_id), limit_tokens=10_000),
        budget(tenant, "end_user", "visitor-7", limit_tokens=10_000),
        budget(tenant, "workflow", "support", limit_tokens=10_000),
        budget(tenant, "end_user", "someone-else", limit_tokens=10_000),
    ]

    call = start(tenant, openai, api_key_id=key_id, end_user="visitor-7", workflow="support")

    held = [counters(row)[2] for row in rows]
    assert held == [call.reserved_tokens] * 4 + [0]


def test_a_refusing_scope_is_named_and_no_other_scope_keeps_a_hold(tenant, openai):
    tenant_budget = budget(tenant, limit_tokens=10_000)
    budget(tenant, "end_user", "visitor-7", limit_tokens=10)

    with pytest.raises(BudgetExceeded) as refused:
        start(tenant, openai, end_user="visitor-7")

    assert refused.value.details["scope_type"] == "end_user"
    assert counters(tenant_budget)[2] == 0


def test_restarting_an_unfinished_call_with_its_key_holds_once(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)

    first = start(tenant, openai, idempotency_key="exec-1:ask")
    second = start(tenant, openai, idempotency_key="exec-1:ask")  # the step was retried

    assert counters(limits)[2] == first.reserved_tokens
    assert BudgetReservation.objects.filter(budget=limits).count() == 1
    usage = Usage(input_tokens=30, output_tokens=10)
    second.succeeded(answer(usage=usage), attempts=1, provider=openai, model="gpt-4o")
    assert counters(limits)[0::2] == (40, 0)


def test_a_key_used_again_after_its_call_finished_is_charged_again(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)
    usage = Usage(input_tokens=30, output_tokens=10)

    for _ in range(2):
        call = start(tenant, openai, idempotency_key="exec-1:ask")
        call.succeeded(answer(usage=usage), attempts=1, provider=openai, model="gpt-4o")

    assert counters(limits)[0::2] == (80, 0)
    assert BudgetReservation.objects.filter(budget=limits).count() == 2


def test_a_restarted_call_finds_only_the_hold_of_its_own_key(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)
    wild = start(tenant, openai, idempotency_key="exec_1%:ask")  # LIKE wildcards in the key
    start(tenant, openai, idempotency_key="exec_11:ask")
    long_key = "exec-2:" + "x" * 300  # longer than a ref: hashed

    again = start(tenant, openai, idempotency_key="exec_1%:ask")
    first_long = start(tenant, openai, idempotency_key=long_key)
    second_long = start(tenant, openai, idempotency_key=long_key)

    assert again.reservation == wild.reservation
    assert second_long.reservation == first_long.reservation
    assert len(first_long.reservation.ref) <= 200
    assert counters(limits)[2] == 3 * wild.reserved_tokens


# -- settle -------------------------------------------------------------------------------------


def test_success_settles_the_hold_to_the_reported_usage(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000, limit_cost=Decimal("1.00"))
    call = start(tenant, openai, max_tokens=500)
    reported = Usage(input_tokens=1000, output_tokens=200, cached_tokens=400)

    row = stored(
        call.succeeded(answer(usage=reported), attempts=2, provider=openai, model="gpt-4o")
    )

    # 600 uncached at 2.50 + 400 cached at 1.25 + 200 out at 10.00 per million.
    expected = Decimal("0.0015") + Decimal("0.0005") + Decimal("0.002")
    assert counters(limits) == (1200, expected, 0, Decimal(0))
    assert (row.input_tokens, row.output_tokens, row.cached_tokens) == (1000, 200, 400)
    assert row.cost == expected
    assert (row.price_input, row.price_output, row.price_cached) == (
        Decimal("2.5"),
        Decimal("10"),
        Decimal("1.25"),
    )
    assert row.pricing_version == price_for("openai", "gpt-4o").version
    assert row.estimated_input_tokens == call.estimate.tokens
    assert (row.tokenizer, row.tokenizer_fallback) == ("cl100k_base", True)  # o200k not shipped
    assert row.request.success and row.request.attempts == 2
    assert row.request.response["usage_estimated"] is False


def test_success_without_reported_usage_is_charged_the_estimate(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)
    call = start(tenant, openai)
    text = "The total is 118.00 EUR, due on the 31st."

    row = stored(call.succeeded(answer(text=text), attempts=1, provider=openai, model="gpt-4o"))

    output = count_tokens(text, model="gpt-4o").tokens
    assert (row.input_tokens, row.output_tokens) == (call.estimate.tokens, output)
    assert counters(limits)[0] == call.estimate.tokens + output
    assert row.request.response["usage_estimated"] is True


def test_tool_calls_count_as_output_when_usage_is_estimated(tenant, openai):
    call = start(tenant, openai)
    tool_call = ToolCall(id="c1", name="lookup_invoice", arguments={"number": 42, "year": 2026})

    row = call.succeeded(
        answer(text="", tool_calls=[tool_call], finish_reason="tool_calls"),
        attempts=1,
        provider=openai,
        model="gpt-4o",
    )

    assert row.output_tokens >= count_tokens("lookup_invoice").tokens + 5


def test_a_fallback_is_priced_by_the_provider_and_model_that_answered(tenant, openai, anthropic):
    limits = budget(tenant, limit_tokens=10_000)
    call = start(tenant, openai, model="gpt-4o")
    usage = Usage(input_tokens=1000, output_tokens=1000)

    row = stored(
        call.succeeded(
            answer(usage=usage), attempts=4, provider=anthropic, model="claude-haiku-4-5"
        )
    )

    assert (row.provider_type, row.model) == ("anthropic", "claude-haiku-4-5")
    assert (row.price_input, row.price_output) == (Decimal("1"), Decimal("5"))
    assert row.cost == Decimal("0.006")
    assert row.request.provider_id == anthropic.pk
    assert counters(limits)[:2] == (2000, Decimal("0.006"))


def test_an_unknown_model_is_recorded_at_zero_cost_with_the_fallback_tokenizer(tenant, openai):
    call = start(tenant, openai, model="local-llama-3")

    row = call.succeeded(
        answer(usage=Usage(input_tokens=50, output_tokens=5)),
        attempts=1,
        provider=openai,
        model="local-llama-3",
    )

    assert row.cost == Decimal(0) and row.price_input == Decimal(0)
    assert row.tokenizer_fallback is True


def test_a_call_without_any_budget_is_unlimited_and_still_recorded(tenant, openai):
    call = start(tenant, openai)

    row = stored(
        call.succeeded(
            answer(usage=Usage(input_tokens=10, output_tokens=2)),
            attempts=1,
            provider=openai,
            model="gpt-4o",
        )
    )

    assert call.reservation is not None and call.reservation.ids == ()
    assert row.request.success


# -- release and partial settle -------------------------------------------------------------


def test_failure_releases_the_hold_and_records_the_error(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000, limit_cost=Decimal("1"))
    call = start(tenant, openai)

    record = call.failed(ProviderUnavailable("upstream 503"), attempts=3)

    assert counters(limits) == (0, Decimal(0), 0, Decimal(0))
    assert (record.error_code, record.error_message, record.attempts) == (
        "llm_unavailable",
        "upstream 503",
        3,
    )
    assert not record.success and not LLMUsage.objects.exists()
    (row,) = llm_audit_rows(tenant)
    assert row.data["error_code"] == "llm_unavailable"


def test_an_unexpected_exception_is_recorded_with_a_generic_code(tenant, openai):
    record = start(tenant, openai).failed(RuntimeError("boom"), attempts=1)

    assert record.error_code == "unexpected_error"


def test_a_broken_stream_is_charged_what_it_used(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)
    call = start(tenant, openai, stream=True)
    partial = answer(text="The total of invoice 42 is")

    record = call.failed(ProviderBadResponse("stream cut"), attempts=1, partial=partial)

    output = count_tokens(partial.text, model="gpt-4o").tokens
    assert counters(limits)[0::2] == (call.estimate.tokens + output, 0)
    usage = LLMUsage.objects.get(request=record)
    assert (usage.input_tokens, usage.output_tokens) == (call.estimate.tokens, output)
    assert usage.cost > 0
    assert (record.error_code, record.success, record.stream) == ("llm_bad_response", False, True)
    assert record.response["text"] == partial.text
    assert llm_audit_rows(tenant)[0].data["output_tokens"] == output


def test_a_broken_stream_keeps_the_usage_the_provider_reported(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)
    call = start(tenant, openai, stream=True)
    partial = answer(text="The total", usage=Usage(input_tokens=321))

    call.failed(ProviderBadResponse("stream cut"), attempts=1, partial=partial)

    assert counters(limits)[0] == 321 + count_tokens("The total", model="gpt-4o").tokens


def test_a_call_finishes_once(tenant, openai):
    call = start(tenant, openai)
    call.succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")

    with pytest.raises(RuntimeError, match="already finished"):
        call.failed(ProviderUnavailable(), attempts=1)
    run_until_idle()
    assert LLMRequest.objects.count() == 1


# -- records ----------------------------------------------------------------------------------


def test_request_record_names_the_call_and_its_context(tenant, openai):
    prompt = Prompt.objects.create(tenant=tenant, name="Invoice answers")
    version = PromptVersion.objects.create(tenant=tenant, prompt=prompt, version=3)
    execution_id = uuid.uuid4()
    call = start(
        tenant,
        openai,
        execution_id=execution_id,
        step_id="ask",
        idempotency_key=f"{execution_id}:ask",
        trace_id="trace-0123456789",
        prompt_version=version,
        workflow="support",
        end_user="visitor-7",
    )

    row = stored(
        call.succeeded(answer(request_id="req_abc"), attempts=1, provider=openai, model="gpt-4o")
    )

    record = row.request
    assert (record.execution_id, record.step_id, record.trace_id) == (
        execution_id,
        "ask",
        "trace-0123456789",
    )
    assert (record.prompt_version, record.prompt_slug) == (version, "invoice-answers")
    assert record.provider_request_id == "req_abc"
    assert record.latency_ms is not None
    assert record.request["messages"][1]["content"] == MESSAGES[1].content
    assert (row.workflow, row.end_user) == ("support", "visitor-7")


def test_audit_row_names_actor_trace_model_tokens_and_cost(tenant, openai):
    key, _ = APIKey.issue(tenant=tenant, name="widget")
    call = start(tenant, openai, api_key_id=key.pk, trace_id="trace-abcdef0123")

    row = stored(
        call.succeeded(
            answer(usage=Usage(input_tokens=100, output_tokens=20)),
            attempts=1,
            provider=openai,
            model="gpt-4o",
        )
    )

    (entry,) = llm_audit_rows(tenant)
    assert entry.actor == f"api_key:{key.prefix}"
    assert entry.trace_id == "trace-abcdef0123"
    assert entry.target == f"llm_request:{row.request_id}"
    assert entry.data["model"] == "gpt-4o" and entry.data["provider_type"] == "openai"
    assert (entry.data["input_tokens"], entry.data["output_tokens"]) == (100, 20)
    assert Decimal(entry.data["cost"]) == row.cost
    assert audit.verify_chain().ok


def test_no_content_or_secret_reaches_the_audit_log_and_secrets_are_redacted_in_records(
    tenant, openai
):
    resolved = "resolved-provider-credential-0042"
    leaked_key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    messages = [
        ChatMessage(role="user", content=f"Our confidential merger plan. My key is {leaked_key}"),
        ChatMessage(role="user", content=f"And the provider secret: {resolved}"),
    ]
    with secret_scope(resolved):  # resolved for the call, forgotten before it is recorded
        call = start(tenant, openai, messages=messages)
    row = stored(
        call.succeeded(
            answer(text=f"Sure, the plan uses {resolved}", usage=Usage(input_tokens=9)),
            attempts=1,
            provider=openai,
            model="gpt-4o",
        )
    )

    audit_text = json.dumps([entry.data for entry in llm_audit_rows(tenant)])
    assert "merger" not in audit_text and "plan" not in audit_text
    assert resolved not in audit_text and leaked_key not in audit_text
    kept = json.dumps([row.request.request, row.request.response])
    assert resolved not in kept and leaked_key not in kept
    assert REDACTED in kept and "merger plan" in kept


def test_success_queues_its_record_and_the_job_writes_it(tenant, openai):
    call = start(tenant, openai, idempotency_key="exec-1:ask")

    charged = call.succeeded(
        answer(usage=Usage(input_tokens=30, output_tokens=10)),
        attempts=1,
        provider=openai,
        model="gpt-4o",
    )

    assert not LLMRequest.objects.exists() and not llm_audit_rows(tenant)
    (job,) = OutboxJob.objects.filter(kind=metering.RECORD_JOB)
    assert (job.tenant_id, job.payload["request_id"]) == (tenant.pk, str(charged.request_id))
    assert run_until_idle() == 1
    row = LLMUsage.objects.select_related("request").get(request_id=charged.request_id)
    assert charged.model_dump() == {
        "request_id": row.request_id,
        **{field: getattr(row, field) for field in charged.model_dump() if field != "request_id"},
    }
    assert row.request.idempotency_key == "exec-1:ask"
    assert len(llm_audit_rows(tenant)) == 1


def test_the_queued_record_is_already_redacted(tenant, openai):
    resolved = "resolved-provider-credential-0042"
    leaked_key = "sk-proj-" + "A1b2C3d4E5f6G7h8I9j0K1l2"
    with secret_scope(resolved):
        call = start(tenant, openai, messages=[ChatMessage(role="user", content=leaked_key)])
    call.succeeded(answer(text=f"echo {resolved}"), attempts=1, provider=openai, model="gpt-4o")

    (job,) = OutboxJob.objects.filter(kind=metering.RECORD_JOB)
    payload = json.dumps(job.payload)
    assert resolved not in payload and leaked_key not in payload
    assert REDACTED in payload


def test_a_record_is_written_once_however_often_its_job_runs(tenant, openai):
    start(tenant, openai).succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")
    (job,) = OutboxJob.objects.filter(kind=metering.RECORD_JOB)
    record = metering.CallRecord.model_validate(job.payload)

    assert metering.write_record(record) is not None
    assert metering.write_record(record) is None

    assert LLMRequest.objects.count() == LLMUsage.objects.count() == 1
    assert len(llm_audit_rows(tenant)) == 1


def test_the_record_keeps_the_time_of_the_call_not_of_its_writing(tenant, openai):
    charged = start(tenant, openai).succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")
    (job,) = OutboxJob.objects.filter(kind=metering.RECORD_JOB)
    finished_at = metering.CallRecord.model_validate(job.payload).finished_at

    row = stored(charged)

    assert row.created_at == row.request.created_at == finished_at


def test_a_provider_deleted_before_the_record_is_written_is_recorded_as_unknown(tenant, openai):
    charged = start(tenant, openai).succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")
    openai.delete()

    row = stored(charged)

    assert row.request.provider_id is None
    assert (row.request.provider_type, row.request.model) == ("openai", "gpt-4o")


def test_a_call_rolled_back_with_its_caller_leaves_no_charge_and_no_record(tenant, openai):
    limits = budget(tenant, limit_tokens=10_000)

    class StepFailed(Exception):
        pass

    with pytest.raises(StepFailed), transaction.atomic():
        call = start(tenant, openai)
        call.succeeded(
            answer(usage=Usage(input_tokens=5)), attempts=1, provider=openai, model="gpt-4o"
        )
        raise StepFailed  # after its call: the step's checkpoint is not written

    assert counters(limits) == (0, Decimal(0), 0, Decimal(0))
    assert not OutboxJob.objects.filter(kind=metering.RECORD_JOB).exists()


def test_a_call_without_a_budget_costs_one_statement_to_start_and_one_to_finish(
    tenant, openai, django_assert_num_queries
):
    with django_assert_num_queries(1):  # the budget lookup
        call = start(tenant, openai, idempotency_key="exec-1:ask")
    with django_assert_num_queries(1):  # the record's job
        call.succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")


def test_a_keyed_call_with_budgets_holds_and_settles_them_in_one_statement_each(
    tenant, openai, django_assert_num_queries
):
    key_id = uuid.uuid4()
    budget(tenant, limit_tokens=10_000)
    budget(tenant, "api_key", str(key_id), limit_tokens=10_000)

    with django_assert_num_queries(3):  # the budget lookup, the key's open hold, the hold
        call = start(tenant, openai, api_key_id=key_id, idempotency_key="exec-1:ask")
    with django_assert_num_queries(2):  # the settle, the record's job
        call.succeeded(answer(), attempts=1, provider=openai, model="gpt-4o")


def test_usage_rows_keep_their_price_after_the_pricing_table_changes(tenant, openai):
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    old = stored(
        start(tenant, openai).succeeded(
            answer(usage=usage), attempts=1, provider=openai, model="gpt-4o"
        )
    )

    overrides = {"openai/gpt-4o": {"input": "9", "output": "90"}}
    with override_settings(AUTOMATE_LLM={"PRICING": overrides}):
        new = start(tenant, openai).succeeded(
            answer(usage=usage), attempts=1, provider=openai, model="gpt-4o"
        )

    old.refresh_from_db()
    assert (old.price_input, old.cost) == (Decimal("2.5"), Decimal("2.5"))
    assert (new.price_input, new.cost) == (Decimal("9"), Decimal("9"))
    assert old.pricing_version != new.pricing_version
    assert "+local." in new.pricing_version


def test_metering_interface_is_the_one_the_gateway_codes_against():
    fields = {f for f in metering.CallContext.__dataclass_fields__}

    assert fields == {
        "api_key_id",
        "end_user",
        "workflow",
        "execution_id",
        "step_id",
        "idempotency_key",
        "trace_id",
        "prompt_version",
        "stream",
    }
    assert CallContext() == CallContext(stream=False)
