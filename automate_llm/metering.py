"""Metering of one gateway call: hold the budget before, charge and record after.

The gateway wraps every call (all its retries and fallbacks)::

    call = start_call(tenant=t, provider=row, model="gpt-4o", messages=m, options=o, context=c)
    try:
        result = ...  # the provider call(s)
    except Exception as exc:
        call.failed(exc, attempts=n, partial=what_the_stream_gave_so_far)
        raise
    usage = call.succeeded(result, attempts=n, provider=used_row, model=used_model)

Guarantees:

* :func:`start_call` reserves, on every budget of the call's scopes (tenant, API key, end user,
  workflow), the estimated prompt tokens plus ``max_tokens`` and what that costs at the model's
  input and output prices. If a budget refuses, it raises :class:`BudgetExceeded` before any
  provider is called, and records the refusal (an ``LLMRequest`` with ``error_code``
  ``budget_exceeded`` and an audit row).
* A call with an idempotency key holds the budget once however often it is started while the
  hold is open (a step retried after its worker died reuses the same hold). Once a call with
  that key has finished, a new call with the same key is a new charge: it was made again.
* :meth:`MeteredCall.succeeded` settles the hold to the provider-reported usage (an estimate
  when the provider reported none), priced by the provider and model actually used (they differ
  from the requested ones after a fallback), and writes ``LLMRequest`` + ``LLMUsage`` + an
  ``llm.call`` audit row in one transaction. Usage rows keep the pricing version and unit prices.
* :meth:`MeteredCall.failed` releases the hold, or, for a stream that broke after it started,
  settles what the stream used (output estimated from the partial text when the provider sent
  no usage); it writes the ``LLMRequest`` with the error and an audit row.
* Stored content goes through the governance redactor, including secret values resolved while
  the call ran. Audit rows hold no content: who, model, tokens, cost, outcome.
"""

from __future__ import annotations

import hashlib
import json
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any

from django.db import transaction

from automate_core.api.tracing import current_trace_id, trace
from automate_core.executions.services import add_usage
from automate_core.governance import audit, budgets
from automate_core.governance.budgets import BudgetExceeded, Reservation, Scope
from automate_core.governance.redaction import (
    current_secret_values,
    redact,
    redact_text,
    secret_scope,
)
from automate_core.tenancy.models import APIKey, Tenant
from automate_llm.conf import llm_settings
from automate_llm.models import LLMProvider, LLMRequest, LLMUsage, PromptVersion
from automate_llm.pricing import Price, price_for
from automate_llm.tokens import TokenCount, count_messages, count_tokens
from automate_llm.types import ChatMessage, ChatOptions, ChatResult, ToolCall, Usage

__all__ = ["AUDIT_ACTION", "BudgetExceeded", "CallContext", "MeteredCall", "start_call"]

AUDIT_ACTION = "llm.call"
BUDGET_EXCEEDED = "budget_exceeded"
# BudgetReservation.ref holds 200 characters; longer idempotency keys are hashed.
_MAX_REF = 200
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
    try:
        call.reservation = budgets.reserve(
            tenant,
            call.scopes,
            tokens=call.reserved_tokens,
            cost=call.reserved_cost,
            ref=_hold_ref(tenant, context.idempotency_key),
        )
    except BudgetExceeded as exc:
        call._record_refusal(exc)
        raise
    return call


def _hold_ref(tenant: Tenant, key: str) -> str | None:
    """The reservation ref for ``key``: the same while no call with the key has finished."""
    if not key:
        return None
    finished = LLMRequest.objects.for_tenant(tenant).filter(idempotency_key=key).count()
    ref = f"llm:{key}" if not finished else f"llm:{key}#{finished}"
    if len(ref) > _MAX_REF:
        ref = f"llm:sha256:{hashlib.sha256(ref.encode()).hexdigest()}"
    return ref


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
    ) -> LLMUsage:
        """Charge the actual usage of the provider and model that answered, and record it."""
        self._finish()
        provider_type = provider.provider_type if provider is not None else self.provider_type
        usage, estimated, tokenizer = self._usage(result, model)
        price = price_for(provider_type, model)
        with self._secrets_scope(), transaction.atomic():
            self._settle(usage, price.cost(usage))
            request = self._write_request(
                provider=provider,
                provider_type=provider_type,
                model=model,
                attempts=attempts,
                success=True,
                provider_request_id=result.request_id or "",
                response=_result_record(result, usage_estimated=estimated),
            )
            row = self._write_usage(request, usage, price, tokenizer)
            self._audit(request, usage=usage, cost=row.cost, pricing_version=price.version)
        return row

    def failed(
        self, error: Exception, *, attempts: int, partial: ChatResult | None = None
    ) -> LLMRequest:
        """Release the hold, or charge what a broken stream used; record the failure."""
        self._finish()
        code = str(getattr(error, "code", "") or "") or "unexpected_error"
        with self._secrets_scope(), transaction.atomic():
            if partial is None:
                if self.reservation is not None:
                    budgets.release(self.reservation)
                request = self._write_request(
                    provider=self.provider,
                    provider_type=self.provider_type,
                    model=self.model,
                    attempts=attempts,
                    success=False,
                    error_code=code,
                    error_message=str(error),
                )
                self._audit(request)
                return request
            provider_type = partial.provider or self.provider_type
            model = partial.model or self.model
            usage, estimated, tokenizer = self._usage(partial, model, partial=True)
            price = price_for(provider_type, model)
            self._settle(usage, price.cost(usage))
            request = self._write_request(
                provider=self.provider if provider_type == self.provider_type else None,
                provider_type=provider_type,
                model=model,
                attempts=attempts,
                success=False,
                error_code=code,
                error_message=str(error),
                provider_request_id=partial.request_id or "",
                response=_result_record(partial, usage_estimated=estimated),
            )
            row = self._write_usage(request, usage, price, tokenizer)
            self._audit(request, usage=usage, cost=row.cost, pricing_version=price.version)
        return request

    # -- internals -------------------------------------------------------------------------

    def _finish(self) -> None:
        if self.finished:
            raise RuntimeError("This metered call is already finished.")
        self.finished = True

    @contextmanager
    def _secrets_scope(self) -> Iterator[None]:
        with secret_scope(*self._secrets):
            yield

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
            request = self._write_request(
                provider=self.provider,
                provider_type=self.provider_type,
                model=self.model,
                attempts=0,
                success=False,
                error_code=BUDGET_EXCEEDED,
                error_message=exc.message,
                response={"budget": exc.details},
            )
            self._audit(request)

    def _write_request(
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
    ) -> LLMRequest:
        version = self.context.prompt_version
        return LLMRequest.objects.create(
            tenant=self.tenant,
            provider=provider,
            provider_type=provider_type,
            model=model,
            prompt_version=version,
            prompt_slug=version.prompt.slug if version is not None else "",
            execution_id=self.context.execution_id,
            step_id=self.context.step_id,
            idempotency_key=self.context.idempotency_key,
            trace_id=self._trace_id,
            stream=self.context.stream,
            success=success,
            error_code=error_code[:100],
            error_message=redact_text(error_message)[:_MAX_ERROR_MESSAGE],
            attempts=attempts,
            latency_ms=int((time.monotonic() - self.started) * 1000),
            provider_request_id=provider_request_id[:200],
            request=_jsonable(redact(self._request_record())),
            response=_jsonable(redact(response or {})),
        )

    def _write_usage(
        self, request: LLMRequest, usage: Usage, price: Price, tokenizer: TokenCount
    ) -> LLMUsage:
        row = LLMUsage.objects.create(
            tenant=self.tenant,
            request=request,
            provider_type=request.provider_type,
            model=request.model,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            cached_tokens=usage.cached_tokens,
            estimated_input_tokens=self.estimate.tokens,
            tokenizer=tokenizer.encoding,
            tokenizer_fallback=tokenizer.fallback,
            pricing_version=price.version,
            price_input=price.input,
            price_output=price.output,
            price_cached=price.cached,
            cost=price.cost(usage),
            api_key_id=self.context.api_key_id,
            end_user=self.context.end_user,
            workflow=self.context.workflow,
        )
        if self.context.execution_id:
            add_usage(
                self.context.execution_id,
                {**usage.model_dump(exclude={"total_tokens"}), "cost": row.cost},
            )
        return row

    def _audit(
        self,
        request: LLMRequest,
        *,
        usage: Usage | None = None,
        cost: Decimal | None = None,
        pricing_version: str = "",
    ) -> None:
        data: dict[str, Any] = {
            "request_id": str(request.pk),
            "provider_type": request.provider_type,
            "model": request.model,
            "requested_model": self.model,
            "success": request.success,
            "error_code": request.error_code,
            "attempts": request.attempts,
            "stream": request.stream,
            "latency_ms": request.latency_ms,
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "cached_tokens": usage.cached_tokens if usage else 0,
            "cost": str(cost if cost is not None else Decimal(0)),
            "pricing_version": pricing_version,
            "reserved_tokens": self.reserved_tokens,
            "reserved_cost": str(self.reserved_cost),
            "prompt": request.prompt_slug,
            "workflow": self.context.workflow,
            "execution_id": str(self.context.execution_id or ""),
            "step_id": self.context.step_id,
            "end_user": self.context.end_user,
        }
        scope = trace(self._trace_id) if self._trace_id else nullcontext()
        with scope:
            audit.record(
                AUDIT_ACTION,
                actor=self._actor(),
                tenant=self.tenant,
                target=f"llm_request:{request.pk}",
                data=data,
            )

    @property
    def _trace_id(self) -> str:
        return self.context.trace_id or current_trace_id() or ""

    def _actor(self) -> str:
        if self.context.api_key_id is None:
            return "system"
        prefix = _key_prefix(self.tenant.pk, self.context.api_key_id)
        return f"api_key:{prefix}" if prefix else f"api_key_id:{self.context.api_key_id}"

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
