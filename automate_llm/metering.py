"""Metering of one gateway call: hold the budget before, charge and record after.

The gateway wraps every call (all its retries and fallbacks)::

    call = start_call(tenant=t, provider=row, model="gpt-4o", messages=m, options=o, context=c)
    try:
        result = ...  # the provider call(s)
    except Exception as exc:
        call.failed(exc, attempts=n, partial=what_the_stream_gave_so_far)
        raise
    charged = call.succeeded(result, attempts=n, provider=used_row, model=used_model)

Guarantees:

* :func:`start_call` reserves, on every budget of the call's scopes (tenant, API key, end user,
  workflow), the estimated prompt tokens plus ``max_tokens`` and what that costs at the model's
  input and output prices. If a budget refuses, it raises :class:`BudgetExceeded` before any
  provider is called, and records the refusal (an ``LLMRequest`` with ``error_code``
  ``budget_exceeded`` and an audit row). A call that no budget applies to holds nothing and
  costs one query.
* A call with an idempotency key holds the budget once however often it is started while the
  hold is open (a call restarted after its caller died reuses the same hold). Once a call with
  that key has finished, a new call with the same key is a new charge: it was made again.
* :meth:`MeteredCall.succeeded` settles the hold to the provider-reported usage (an estimate
  when the provider reported none), priced by the provider and model actually used (they differ
  from the requested ones after a fallback), and, in the same transaction, queues an
  ``llm.record`` outbox job carrying the call's record, its content already redacted. The job
  writes ``LLMRequest`` + ``LLMUsage`` + the ``llm.call`` audit row and adds the usage to the
  workflow run, once per request id (:func:`write_record`). The job commits with the caller (a
  workflow step's checkpoint, or on its own), so a committed call is never left unrecorded; the
  rows appear when a worker runs it. Usage rows keep the pricing version and unit prices, and
  the returned :class:`ChargedUsage` is the usage row as it will be stored.
* :meth:`MeteredCall.failed` releases the hold, or, for a stream that broke after it started,
  settles what the stream used (output estimated from the partial text when the provider sent
  no usage); refusals and failures are recorded at once (``LLMRequest`` with the error and an
  audit row), so an error response can name its record.
* Stored content goes through the governance redactor, including secret values resolved while
  the call ran. Audit rows hold no content: who, model, tokens, cost, outcome.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import transaction
from pydantic import BaseModel

from automate_core.executions.services import add_usage
from automate_core.governance import audit, budgets
from automate_core.governance.budgets import BudgetExceeded, Reservation, Scope
from automate_core.governance.redaction import (
    current_secret_values,
    redact,
    redact_text,
    secret_scope,
)
from automate_core.outbox import store
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.tracing import current_trace_id, trace
from automate_core.workflows.steps import StepCall, attribution
from automate_llm.conf import llm_settings
from automate_llm.models import LLMProvider, LLMRequest, LLMUsage, PromptVersion
from automate_llm.pricing import Price, price_for
from automate_llm.tokens import TokenCount, count_messages, count_tokens
from automate_llm.types import ChatMessage, ChatOptions, ChatResult, ToolCall, Usage

__all__ = [
    "AUDIT_ACTION",
    "RECORD_JOB",
    "BudgetExceeded",
    "CallContext",
    "CallRecord",
    "ChargedUsage",
    "MeteredCall",
    "start_call",
    "write_record",
]

AUDIT_ACTION = "llm.call"
#: The outbox job kind that stores a successful call's record (``automate_llm.tasks``).
RECORD_JOB = "llm.record"
BUDGET_EXCEEDED = "budget_exceeded"
# BudgetReservation.ref holds 200 characters; longer idempotency keys are hashed.
_MAX_REF = 200
_HOLD_SUFFIX = 12  # hex digits that tell apart the holds of one key's successive calls
_MAX_ERROR_MESSAGE = 2000


@dataclass(frozen=True)
class CallContext:
    """Who and what the call is for: the budget scopes, the trace and the step it belongs to."""

    api_key_id: uuid.UUID | None = None
    end_user: str = ""
    workflow: str = ""
    execution_id: uuid.UUID | None = None
    step_id: str = ""
    idempotency_key: str = ""
    trace_id: str = ""
    prompt_version: PromptVersion | None = None
    stream: bool = False

    @classmethod
    def for_step(cls, call: StepCall, *, key_suffix: str = "") -> CallContext:
        """The context of a call made by the workflow step ``call``: its run, step, workflow
        budget scope, trace and idempotency key (with ``key_suffix`` when a step makes several
        calls)."""
        step = attribution(call, key_suffix=key_suffix)
        return cls(
            execution_id=step.execution_id,
            step_id=step.step_id,
            idempotency_key=step.idempotency_key,
            trace_id=step.trace_id,
            workflow=step.workflow,
        )


class ChargedUsage(BaseModel):
    """What a finished call was charged: its ``LLMUsage`` row, field for field, as stored."""

    request_id: uuid.UUID
    provider_type: str
    model: str
    input_tokens: int
    output_tokens: int
    cached_tokens: int
    estimated_input_tokens: int
    tokenizer: str
    tokenizer_fallback: bool
    pricing_version: str
    price_input: Decimal
    price_output: Decimal
    price_cached: Decimal
    cost: Decimal


class CallRecord(BaseModel):
    """Everything stored about one finished call, content already redacted: the payload of an
    ``llm.record`` job, and what :func:`write_record` turns into rows."""

    request_id: uuid.UUID
    tenant_id: uuid.UUID
    finished_at: dt.datetime
    provider_id: uuid.UUID | None = None
    provider_type: str = ""
    model: str = ""
    requested_model: str = ""
    prompt_version_id: uuid.UUID | None = None
    prompt_slug: str = ""
    execution_id: uuid.UUID | None = None
    step_id: str = ""
    idempotency_key: str = ""
    trace_id: str = ""
    stream: bool = False
    success: bool = False
    error_code: str = ""
    error_message: str = ""
    attempts: int = 0
    latency_ms: int = 0
    provider_request_id: str = ""
    request: dict[str, Any] = {}
    response: dict[str, Any] = {}
    usage: ChargedUsage | None = None
    api_key_id: uuid.UUID | None = None
    end_user: str = ""
    workflow: str = ""
    reserved_tokens: int = 0
    reserved_cost: Decimal = Decimal(0)


def start_call(
    *,
    tenant: Tenant,
    provider: LLMProvider | None,
    model: str,
    messages: Sequence[ChatMessage],
    options: ChatOptions,
    context: CallContext,
) -> MeteredCall:
    """Estimate the call, hold its worst case on the budgets, and return the open call.

    Raises :class:`BudgetExceeded` (HTTP 402) when a budget cannot hold it; nothing is held then.
    """
    call = MeteredCall(
        tenant=tenant,
        provider=provider,
        model=model,
        messages=list(messages),
        options=options,
        context=context,
    )
    applicable = budgets.current_budgets(tenant, call.scopes)
    try:
        call.reservation = budgets.reserve(
            tenant,
            call.scopes,
            tokens=call.reserved_tokens,
            cost=call.reserved_cost,
            ref=_hold_ref(applicable, context.idempotency_key),
            applicable=applicable,
        )
    except BudgetExceeded as exc:
        call._record_refusal(exc)
        raise
    return call


def _hold_ref(applicable: Sequence[budgets.Budget], key: str) -> str | None:
    """The reservation ref of a call with idempotency ``key``: the open hold of a call with
    that key that has not finished yet, else a new one. ``None`` (any ref) without a key or
    without a budget to hold on."""
    if not key or not applicable:
        return None
    prefix = f"llm:{key}#"
    if len(prefix) + _HOLD_SUFFIX > _MAX_REF:
        prefix = f"llm:sha256:{hashlib.sha256(key.encode()).hexdigest()}#"
    return budgets.open_hold(applicable, prefix) or prefix + uuid.uuid4().hex[:_HOLD_SUFFIX]


class MeteredCall:
    """An open call: its estimate and budget hold, finished by :meth:`succeeded` or
    :meth:`failed` (exactly once)."""

    reservation: Reservation | None

    def __init__(
        self,
        *,
        tenant: Tenant,
        provider: LLMProvider | None,
        model: str,
        messages: list[ChatMessage],
        options: ChatOptions,
        context: CallContext,
    ) -> None:
        self.tenant = tenant
        self.provider = provider
        self.model = model
        self.messages = messages
        self.options = options
        self.context = context
        self.started = time.monotonic()
        self.estimate: TokenCount = count_messages(
            messages, model=model, tools=options.tools, json_schema=options.json_schema
        )
        self.max_tokens = int(options.max_tokens or llm_settings.DEFAULT_MAX_TOKENS)
        self.price: Price = price_for(self.provider_type, model)
        self.reserved_tokens = self.estimate.tokens + self.max_tokens
        self.reserved_cost = self.price.upper_bound(
            input_tokens=self.estimate.tokens, output_tokens=self.max_tokens
        )
        self.reservation = None
        self.finished = False
        # Secrets resolved before the call (the provider's key) may be forgotten by the time it
        # finishes; they are scrubbed from what is stored all the same.
        self._secrets = current_secret_values()

    @property
    def provider_type(self) -> str:
        return self.provider.provider_type if self.provider is not None else ""

    @property
    def scopes(self) -> list[Scope]:
        """The budget scopes this call counts against: always the tenant, then each one known."""
        scopes: list[Scope] = [("tenant", str(self.tenant.pk))]
        if self.context.api_key_id:
            scopes.append(("api_key", str(self.context.api_key_id)))
        if self.context.end_user:
            scopes.append(("end_user", self.context.end_user))
        if self.context.workflow:
            scopes.append(("workflow", self.context.workflow))
        return scopes

    # -- outcomes --------------------------------------------------------------------------

    def succeeded(
        self,
        result: ChatResult,
        *,
        attempts: int,
        provider: LLMProvider | None,
        model: str,
    ) -> ChargedUsage:
        """Charge the actual usage of the provider and model that answered, and queue its
        record (written by the ``llm.record`` job, see :func:`write_record`)."""
        self._finish()
        provider_type = provider.provider_type if provider is not None else self.provider_type
        usage, estimated, tokenizer = self._usage(result, model)
        price = price_for(provider_type, model)
        with self._secrets_scope():
            record = self._record(
                provider=provider,
                provider_type=provider_type,
                model=model,
                attempts=attempts,
                success=True,
                provider_request_id=result.request_id or "",
                response=_result_record(result, usage_estimated=estimated),
                usage=(usage, price, tokenizer),
            )
        assert record.usage is not None
        with self._transaction():
            self._settle(usage, record.usage.cost)
            store.enqueue(
                RECORD_JOB,
                record.model_dump(mode="json"),
                tenant=self.tenant,
                trace_id=record.trace_id or None,
            )
        return record.usage

    def failed(
        self, error: Exception, *, attempts: int, partial: ChatResult | None = None
    ) -> LLMRequest:
        """Release the hold, or charge what a broken stream used; record the failure now."""
        self._finish()
        code = str(getattr(error, "code", "") or "") or "unexpected_error"
        with self._secrets_scope(), transaction.atomic():
            if partial is None:
                if self.reservation is not None:
                    budgets.release(self.reservation)
                record = self._record(
                    provider=self.provider,
                    provider_type=self.provider_type,
                    model=self.model,
                    attempts=attempts,
                    success=False,
                    error_code=code,
                    error_message=str(error),
                )
                return _written(record, self.tenant)
            provider_type = partial.provider or self.provider_type
            model = partial.model or self.model
            usage, estimated, tokenizer = self._usage(partial, model, partial=True)
            price = price_for(provider_type, model)
            record = self._record(
                provider=self.provider if provider_type == self.provider_type else None,
                provider_type=provider_type,
                model=model,
                attempts=attempts,
                success=False,
                error_code=code,
                error_message=str(error),
                provider_request_id=partial.request_id or "",
                response=_result_record(partial, usage_estimated=estimated),
                usage=(usage, price, tokenizer),
            )
            assert record.usage is not None
            self._settle(usage, record.usage.cost)
            return _written(record, self.tenant)

    # -- internals -------------------------------------------------------------------------

    def _finish(self) -> None:
        if self.finished:
            raise RuntimeError("This metered call is already finished.")
        self.finished = True

    @contextmanager
    def _secrets_scope(self) -> Iterator[None]:
        with secret_scope(*self._secrets):
            yield

    def _transaction(self) -> AbstractContextManager[Any]:
        """Settling and queueing the record commit together; without a hold to settle, the
        single insert of the job needs no transaction of its own (nor a savepoint in one)."""
        if self.reservation is None or not self.reservation.ids:
            return nullcontext()
        return transaction.atomic(savepoint=False)

    def _usage(
        self, result: ChatResult, model: str, *, partial: bool = False
    ) -> tuple[Usage, bool, TokenCount]:
        """The usage to charge, whether any of it is estimated, and the estimate's tokenizer.

        Provider-reported counts win. A finished call that reports nothing is estimated whole;
        a broken stream keeps whatever the provider reported and estimates the rest.
        """
        reported = result.usage
        prompt = self.estimate
        if model != self.model:
            prompt = count_messages(
                self.messages,
                model=model,
                tools=self.options.tools,
                json_schema=self.options.json_schema,
            )
        if not partial and (reported.input_tokens or reported.output_tokens):
            return reported, False, prompt
        output = count_tokens(_result_text(result), model=model)
        usage = Usage(
            input_tokens=reported.input_tokens or prompt.tokens,
            output_tokens=reported.output_tokens or output.tokens,
            cached_tokens=reported.cached_tokens,
        )
        estimated = not reported.input_tokens or not reported.output_tokens
        return usage, estimated, prompt

    def _settle(self, usage: Usage, cost: Decimal) -> None:
        if self.reservation is not None:
            budgets.settle(self.reservation, actual_tokens=usage.total_tokens, actual_cost=cost)

    def _record_refusal(self, exc: BudgetExceeded) -> None:
        self._finish()
        with self._secrets_scope(), transaction.atomic():
            record = self._record(
                provider=self.provider,
                provider_type=self.provider_type,
                model=self.model,
                attempts=0,
                success=False,
                error_code=BUDGET_EXCEEDED,
                error_message=exc.message,
                response={"budget": exc.details},
            )
            _written(record, self.tenant)

    def _record(
        self,
        *,
        provider: LLMProvider | None,
        provider_type: str,
        model: str,
        attempts: int,
        success: bool,
        error_code: str = "",
        error_message: str = "",
        provider_request_id: str = "",
        response: dict[str, Any] | None = None,
        usage: tuple[Usage, Price, TokenCount] | None = None,
    ) -> CallRecord:
        """The call's record, redacted in this call's secret scope."""
        request_id = uuid.uuid4()
        charged = None
        if usage is not None:
            used, price, tokenizer = usage
            charged = ChargedUsage(
                request_id=request_id,
                provider_type=provider_type,
                model=model,
                input_tokens=used.input_tokens,
                output_tokens=used.output_tokens,
                cached_tokens=used.cached_tokens,
                estimated_input_tokens=self.estimate.tokens,
                tokenizer=tokenizer.encoding,
                tokenizer_fallback=tokenizer.fallback,
                pricing_version=price.version,
                price_input=price.input,
                price_output=price.output,
                price_cached=price.cached,
                cost=price.cost(used),
            )
        version = self.context.prompt_version
        return CallRecord(
            request_id=request_id,
            tenant_id=self.tenant.pk,
            finished_at=dt.datetime.now(dt.UTC),
            provider_id=provider.pk if provider is not None else None,
            provider_type=provider_type,
            model=model,
            requested_model=self.model,
            prompt_version_id=version.pk if version is not None else None,
            prompt_slug=version.prompt.slug if version is not None else "",
            execution_id=self.context.execution_id,
            step_id=self.context.step_id,
            idempotency_key=self.context.idempotency_key,
            trace_id=self.context.trace_id or current_trace_id() or "",
            stream=self.context.stream,
            success=success,
            error_code=error_code[:100],
            error_message=redact_text(error_message)[:_MAX_ERROR_MESSAGE],
            attempts=attempts,
            latency_ms=int((time.monotonic() - self.started) * 1000),
            provider_request_id=provider_request_id[:200],
            request=_jsonable(redact(self._request_record())),
            response=_jsonable(redact(response or {})),
            usage=charged,
            api_key_id=self.context.api_key_id,
            end_user=self.context.end_user,
            workflow=self.context.workflow,
            reserved_tokens=self.reserved_tokens,
            reserved_cost=self.reserved_cost,
        )

    def _request_record(self) -> dict[str, Any]:
        return {
            "messages": [m.model_dump(mode="json", exclude_defaults=True) for m in self.messages],
            "options": self.options.model_dump(mode="json", exclude_defaults=True),
            "estimate": {
                "input_tokens": self.estimate.tokens,
                "max_tokens": self.max_tokens,
                "tokenizer": self.estimate.encoding,
                "tokenizer_fallback": self.estimate.fallback,
            },
        }


# -- writing records ----------------------------------------------------------------------------


def write_record(record: CallRecord, *, tenant: Tenant | None = None) -> LLMRequest | None:
    """Store one call: its ``LLMRequest``, its ``LLMUsage`` (when it was charged), the
    ``llm.call`` audit row, and its usage added to the workflow run it belongs to.

    Idempotent on ``record.request_id``: a record already stored is not written again
    (``None`` is returned). The rows keep the call's time, not the time they are written. A
    provider or prompt version deleted since the call is recorded as unknown (the stored slug,
    type and model still name it). Run it in a transaction: everything commits together.
    """
    if LLMRequest.objects.filter(pk=record.request_id).exists():
        return None
    request = LLMRequest(
        id=record.request_id,
        tenant_id=record.tenant_id,
        created_at=record.finished_at,
        provider_id=_existing(LLMProvider, record.provider_id),
        provider_type=record.provider_type,
        model=record.model,
        prompt_version_id=_existing(PromptVersion, record.prompt_version_id),
        prompt_slug=record.prompt_slug,
        execution_id=record.execution_id,
        step_id=record.step_id,
        idempotency_key=record.idempotency_key,
        trace_id=record.trace_id,
        stream=record.stream,
        success=record.success,
        error_code=record.error_code,
        error_message=record.error_message,
        attempts=record.attempts,
        latency_ms=record.latency_ms,
        provider_request_id=record.provider_request_id,
        request=record.request,
        response=record.response,
    )
    # raw: the ORM would stamp created_at (auto_now_add) with the time of writing.
    request.save_base(raw=True, force_insert=True)
    charged = record.usage
    if charged is not None:
        LLMUsage(
            **charged.model_dump(exclude={"request_id"}),
            tenant_id=record.tenant_id,
            created_at=record.finished_at,
            request=request,
            api_key_id=record.api_key_id,
            end_user=record.end_user,
            workflow=record.workflow,
        ).save_base(raw=True, force_insert=True)
        if record.execution_id:
            add_usage(
                record.execution_id,
                {
                    "input_tokens": charged.input_tokens,
                    "output_tokens": charged.output_tokens,
                    "cached_tokens": charged.cached_tokens,
                    "cost": charged.cost,
                },
            )
    _audit(record, tenant or Tenant(pk=record.tenant_id))
    return request


def _written(record: CallRecord, tenant: Tenant) -> LLMRequest:
    request = write_record(record, tenant=tenant)
    assert request is not None  # a new request id
    return request


def _existing(model: type[LLMProvider] | type[PromptVersion], pk: uuid.UUID | None) -> Any:
    if pk is None or not model.objects.filter(pk=pk).exists():
        return None
    return pk


def _audit(record: CallRecord, tenant: Tenant) -> None:
    usage = record.usage
    data: dict[str, Any] = {
        "request_id": str(record.request_id),
        "provider_type": record.provider_type,
        "model": record.model,
        "requested_model": record.requested_model,
        "success": record.success,
        "error_code": record.error_code,
        "attempts": record.attempts,
        "stream": record.stream,
        "latency_ms": record.latency_ms,
        "input_tokens": usage.input_tokens if usage else 0,
        "output_tokens": usage.output_tokens if usage else 0,
        "cached_tokens": usage.cached_tokens if usage else 0,
        "cost": str(usage.cost if usage else Decimal(0)),
        "pricing_version": usage.pricing_version if usage else "",
        "reserved_tokens": record.reserved_tokens,
        "reserved_cost": str(record.reserved_cost),
        "prompt": record.prompt_slug,
        "workflow": record.workflow,
        "execution_id": str(record.execution_id or ""),
        "step_id": record.step_id,
        "end_user": record.end_user,
    }
    scope = trace(record.trace_id) if record.trace_id else nullcontext()
    with scope:
        audit.record(
            AUDIT_ACTION,
            actor=_actor(record.tenant_id, record.api_key_id),
            tenant=tenant,
            target=f"llm_request:{record.request_id}",
            data=data,
        )


def _actor(tenant_id: uuid.UUID, api_key_id: uuid.UUID | None) -> str:
    if api_key_id is None:
        return "system"
    prefix = _key_prefix(tenant_id, api_key_id)
    return f"api_key:{prefix}" if prefix else f"api_key_id:{api_key_id}"


@lru_cache(maxsize=1024)
def _key_prefix(tenant_id: uuid.UUID, key_id: uuid.UUID) -> str | None:
    """An API key's prefix, as audit rows name it; it never changes, so it is looked up once."""
    return (
        APIKey.objects.for_tenant(tenant_id)
        .filter(pk=key_id)
        .values_list("prefix", flat=True)
        .first()
    )


def _result_text(result: ChatResult) -> str:
    """The text a result's output tokens were spent on: its text and its tool calls."""
    calls = "".join(_tool_call_text(call) for call in result.tool_calls)
    return result.text + calls


def _tool_call_text(call: ToolCall) -> str:
    return call.name + json.dumps(call.arguments, ensure_ascii=False, separators=(",", ":"))


def _result_record(result: ChatResult, *, usage_estimated: bool) -> dict[str, Any]:
    record = result.model_dump(mode="json")
    record["usage_estimated"] = usage_estimated
    return record


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))
