"""What other apps call to use a language model: ``chat``, ``stream_chat``, ``structured`` and
``embed``; ``register_tool_type`` (with ``ToolType``) to give ``llm.agent`` a kind of tool; and
``labelled_prompts`` / ``render_prompt`` for apps that offer the tenant's prompts (MCP).

Each call resolves the tenant's provider and model (a model config slug, or a model id on a
provider, or the tenant's defaults), runs through the gateway (retries, fallback, structured
output validation) and is metered: held against the budgets before anything is sent, charged
after, and recorded (``LLMRequest``, ``LLMUsage``, audit row) by an outbox job queued with the
charge (see :mod:`automate_llm.metering`). The answer carries its usage, cost and the
``LLMRequest`` id, so an AI step can put ``usage.cost`` in its output. A call costs three
statements when no budget applies: the tenant's providers and model configs, the budget lookup,
the record's job.

Guarantees:

* No provider is called when a budget refuses (``BudgetExceeded``) or nothing is configured
  (``NoProviderConfigured``, with what is missing).
* One metered record per provider-facing call: a structured answer that needed its repair
  attempt is two records; retries and fallbacks inside one call are one record with
  ``attempts``.
* Secret values resolved for a call (the provider's key) are scrubbed from everything the call
  records, and forgotten when it ends.
"""

from __future__ import annotations

import dataclasses
import logging
import uuid
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from decimal import Decimal
from typing import Any, TypeVar

import pydantic
from pydantic import BaseModel, Field

from automate_core import prepared
from automate_core.api.errors import error_body
from automate_core.api.usage import UsageSerializer
from automate_core.errors import AutomateError, InvalidInputError
from automate_core.governance.redaction import current_secret_values, secret_scope
from automate_core.prepared import Columns
from automate_core.tenancy.models import Tenant
from automate_llm import metering, prompts
from automate_llm.errors import NoProviderConfigured, StreamCancelled, UnknownProvider
from automate_llm.gateway import (
    Attempts,
    ChatStream,
    Completion,
    Gateway,
    OutputSchema,
    Target,
    run_structured,
)
from automate_llm.metering import CallContext, ChargedUsage
from automate_llm.models import LLMModelConfig, LLMProvider, LLMRequest, LLMUsage
from automate_llm.tools import ToolType, register_tool_type
from automate_llm.types import ChatChunk, ChatMessage, ChatOptions, ChatResult, ToolSpec, Usage

__all__ = [
    "CallContext",
    "CallUsage",
    "ChatResponse",
    "ChatStreamResponse",
    "EmbeddingResponse",
    "LabelledPrompt",
    "StructuredResponse",
    "ToolSpec",
    "ToolType",
    "chat",
    "embed",
    "labelled_prompts",
    "register_tool_type",
    "render_prompt",
    "resolve_targets",
    "stream_chat",
    "structured",
]

logger = logging.getLogger("automate.llm")

T = TypeVar("T")

#: The gateway every service call runs through (settings are read per call).
gateway = Gateway()


class CallUsage(BaseModel):
    """Tokens and what they cost (in the pricing table's currency, USD)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cached_tokens: int = 0
    cost: Decimal = Decimal(0)

    @classmethod
    def of(cls, row: LLMUsage | ChargedUsage) -> CallUsage:
        return cls(
            input_tokens=row.input_tokens,
            output_tokens=row.output_tokens,
            cached_tokens=row.cached_tokens,
            cost=row.cost,
        )

    def __add__(self, other: CallUsage) -> CallUsage:
        return CallUsage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cached_tokens=self.cached_tokens + other.cached_tokens,
            cost=self.cost + other.cost,
        )


class ChatResponse(BaseModel):
    """A chat answer with what it cost and where it is recorded."""

    result: ChatResult
    usage: CallUsage
    #: The ``LLMRequest`` that records this call.
    request_id: uuid.UUID | None = None
    #: Slug of the provider that answered (after a fallback, not the requested one) and model.
    provider: str = ""
    model: str = ""
    attempts: int = 1

    @property
    def text(self) -> str:
        return self.result.text


class StructuredResponse(ChatResponse):
    """A validated structured answer: ``value`` is the JSON value, or an instance of the
    pydantic model given as the schema. ``usage`` sums both calls when a repair was needed."""

    value: Any = None
    repaired: bool = False
    request_ids: list[uuid.UUID] = Field(default_factory=list)


class EmbeddingResponse(BaseModel):
    vectors: list[list[float]]
    usage: CallUsage
    request_id: uuid.UUID | None = None
    provider: str = ""
    model: str = ""


# -- resolution --------------------------------------------------------------------------------


def resolve_targets(
    *, tenant: Tenant, model: str | None = None, provider: str | None = None
) -> list[Target]:
    """The (provider, model) pairs a call tries, in order: the primary, then its fallbacks.

    ``model`` is a model config slug, or else a model id on ``provider`` (or on the default
    provider); ``provider`` is a provider slug. With neither, the tenant's default model
    config, else the default provider's ``default_model``. The default provider is the one
    marked default, or the only active one. Fallbacks are the model config's, in order;
    inactive providers and unknown slugs are skipped (the latter with a warning). The tenant's
    providers and model configs are read in one query, at every call, so a change made anywhere
    applies to the next call.
    """
    setup = TenantModels.load(tenant)
    config: LLMModelConfig | None = None
    if provider:
        row = setup.active_provider(provider)
        if row is None and not setup.active:
            raise NoProviderConfigured(
                f"No active LLM provider {provider!r} is configured for this tenant.",
                details={"provider": provider},
            )
        if row is None:
            choices = [p.slug for p in setup.active]
            raise UnknownProvider(
                f"No active LLM provider {provider!r} in this tenant; choose one of "
                f"{', '.join(choices)}.",
                details={"provider": provider, "choices": choices},
            )
        if model:
            config = setup.config(model, provider=row)
            primary = Target.from_config(config) if config else Target(model=model, provider=row)
        else:
            config = setup.default_config(provider=row)
            primary = Target.from_config(config) if config else _default_model_on(row)
    elif model:
        config = setup.config(model)
        if config is not None:
            primary = Target.from_config(config)
        else:
            primary = Target(model=model, provider=setup.default_provider())
    else:
        config = setup.default_config()
        if config is not None:
            primary = Target.from_config(config)
        else:
            primary = _default_model_on(setup.default_provider())

    targets = [primary]
    if config is not None:
        for slug in config.fallbacks:
            fallback = setup.config(slug)
            if fallback is None:
                logger.warning("Model config %r names an unknown fallback %r", config.slug, slug)
                continue
            targets.append(Target.from_config(fallback))
    usable = [t for t in targets if t.provider is not None and t.provider.is_active]
    if not usable:
        raise NoProviderConfigured(
            f"The LLM provider of model {primary.model!r} is inactive and it has no active "
            "fallback.",
            details={"model": primary.model},
        )
    return usable


@dataclasses.dataclass(frozen=True)
class TenantModels:
    """A tenant's LLM providers and model configs (each config's ``provider`` set, each row's
    ``tenant`` the caller's), in name order, as the admin lists them."""

    providers: list[LLMProvider]
    configs: list[LLMModelConfig]

    @classmethod
    def load(cls, tenant: Tenant) -> TenantModels:
        """One query: the providers LEFT JOIN their configs (a prepared statement). A config
        whose provider is another tenant's is not the tenant's to use and is left out.
        """
        with prepared.cursor() as cursor:
            cursor.execute(_TENANT_MODELS_SQL, [tenant.pk])
            rows = cursor.fetchall()
        width = len(_PROVIDER.fields)
        by_id: dict[uuid.UUID, LLMProvider] = {}
        configs = []
        for row in rows:
            provider = _PROVIDER.instance(LLMProvider, row[:width])
            by_id.setdefault(provider.pk, provider)
            if row[width + _CONFIG.attnames.index("id")] is not None:
                configs.append(_CONFIG.instance(LLMModelConfig, row[width:]))
        providers = list(by_id.values())
        for row in providers:
            row.tenant = tenant
        for config in configs:
            config.tenant = tenant
            config.provider = by_id[config.provider_id]
        return cls(
            providers=sorted(providers, key=lambda p: (p.name, str(p.pk))),
            configs=sorted(configs, key=lambda c: (c.name, str(c.pk))),
        )

    @property
    def active(self) -> list[LLMProvider]:
        return [p for p in self.providers if p.is_active]

    def active_provider(self, slug: str) -> LLMProvider | None:
        return next((p for p in self.active if p.slug == slug), None)

    def config(self, slug: str, *, provider: LLMProvider | None = None) -> LLMModelConfig | None:
        return next(
            (
                c
                for c in self.configs
                if c.slug == slug and (provider is None or c.provider_id == provider.pk)
            ),
            None,
        )

    def default_config(self, *, provider: LLMProvider | None = None) -> LLMModelConfig | None:
        return next(
            (
                c
                for c in self.configs
                if c.is_default and (provider is None or c.provider_id == provider.pk)
            ),
            None,
        )

    def default_provider(self) -> LLMProvider:
        """The active provider marked default, else the only active one."""
        active = self.active
        row = next((p for p in active if p.is_default), None)
        if row is None and len(active) == 1:
            row = active[0]
        if row is None:
            raise NoProviderConfigured()
        return row


_PROVIDER = Columns(LLMProvider._meta.concrete_fields)
_CONFIG = Columns(LLMModelConfig._meta.concrete_fields)
_TENANT_MODELS_SQL = f"""
SELECT {", ".join(f"p.{field.column}" for field in _PROVIDER.fields)},
       {", ".join(f"c.{field.column}" for field in _CONFIG.fields)}
FROM {LLMProvider._meta.db_table} p
LEFT JOIN {LLMModelConfig._meta.db_table} c ON c.provider_id = p.id AND c.tenant_id = p.tenant_id
WHERE p.tenant_id = %s::uuid
"""  # noqa: S608 (constants)


def _default_model_on(row: LLMProvider) -> Target:
    model = (row.config or {}).get("default_model")
    if not model:
        raise NoProviderConfigured(
            f"No model to use: LLM provider {row.slug!r} has no default_model in its config and "
            "the tenant has no default model config. Name a model in the call or configure one.",
            details={"provider": row.slug},
        )
    return Target(model=str(model), provider=row)


# -- inputs ------------------------------------------------------------------------------------


def _messages(messages: Sequence[ChatMessage | Mapping[str, Any]]) -> list[ChatMessage]:
    if not messages:
        raise InvalidInputError("messages must not be empty.")
    try:
        return [
            m if isinstance(m, ChatMessage) else ChatMessage.model_validate(m) for m in messages
        ]
    except pydantic.ValidationError as exc:
        raise InvalidInputError("Invalid messages.", details={"errors": _errors(exc)}) from None


def _options(context: CallContext, **values: Any) -> ChatOptions:
    try:
        tools = [
            t if isinstance(t, ToolSpec) else ToolSpec.model_validate(t)
            for t in values.pop("tools")
        ]
        return ChatOptions(
            model="",  # each target sets its own
            tools=tools,
            idempotency_key=context.idempotency_key or None,
            **{key: value for key, value in values.items() if value is not None},
        )
    except pydantic.ValidationError as exc:
        raise InvalidInputError("Invalid call options.", details={"errors": _errors(exc)}) from None


def _errors(exc: pydantic.ValidationError) -> list[dict[str, Any]]:
    return [
        {"loc": ".".join(str(part) for part in error["loc"]), "msg": error["msg"]}
        for error in exc.errors()
    ]


# -- metered calls -----------------------------------------------------------------------------


def _start(
    tenant: Tenant,
    targets: Sequence[Target],
    messages: Sequence[ChatMessage],
    options: ChatOptions,
    context: CallContext,
) -> metering.MeteredCall:
    primary = targets[0]
    return metering.start_call(
        tenant=tenant,
        provider=primary.provider,
        model=primary.model,
        messages=messages,
        options=primary.options(options),
        context=context,
    )


def _metered_chat(
    tenant: Tenant,
    targets: Sequence[Target],
    messages: Sequence[ChatMessage],
    options: ChatOptions,
    context: CallContext,
) -> ChatResponse:
    """One gateway chat call between a budget hold and its record (in the caller's scope)."""
    call = _start(tenant, targets, messages, options, context)
    attempts = Attempts()
    try:
        completion = gateway.chat(targets, messages, options, attempts=attempts)
    except Exception as exc:
        call.failed(exc, attempts=attempts.count)
        raise
    return _response(call, completion)


def _response(call: metering.MeteredCall, completion: Completion) -> ChatResponse:
    target = completion.target
    charged = call.succeeded(
        completion.result,
        attempts=completion.attempts,
        provider=target.provider,
        model=target.model,
    )
    return ChatResponse(
        result=completion.result,
        usage=CallUsage.of(charged),
        request_id=charged.request_id,
        provider=target.provider.slug if target.provider is not None else target.provider_type,
        model=target.model,
        attempts=completion.attempts,
    )


def chat(
    *,
    tenant: Tenant,
    messages: Sequence[ChatMessage | Mapping[str, Any]],
    model: str | None = None,
    provider: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] = (),
    tools: Sequence[ToolSpec | Mapping[str, Any]] = (),
    tool_choice: str = "auto",
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    context: CallContext | None = None,
) -> ChatResponse:
    """Ask ``model`` (see :func:`resolve_targets`) for the next turn of ``messages``.

    ``params`` are provider parameters passed through (``top_p``, ``seed``...);
    ``context.idempotency_key`` is sent to the provider with every attempt.
    """
    context = context or CallContext()
    chat_messages = _messages(messages)
    options = _options(
        context,
        max_tokens=max_tokens,
        temperature=temperature,
        stop=list(stop),
        tools=tools,
        tool_choice=tool_choice,
        timeout=timeout,
        extra=dict(params or {}),
    )
    targets = resolve_targets(tenant=tenant, model=model, provider=provider)
    with secret_scope():
        return _metered_chat(tenant, targets, chat_messages, options, context)


def structured(
    *,
    tenant: Tenant,
    messages: Sequence[ChatMessage | Mapping[str, Any]],
    schema: Mapping[str, Any] | type[BaseModel],
    model: str | None = None,
    provider: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    context: CallContext | None = None,
) -> StructuredResponse:
    """An answer that matches ``schema`` (a JSON schema, or a pydantic model class whose
    instance is returned as ``value``); one repair attempt, then StructuredOutputInvalid.

    The repair call is metered and recorded on its own, with ``:repair`` appended to the
    idempotency key (it is a different request).
    """
    context = context or CallContext()
    output = OutputSchema(schema)
    chat_messages = _messages(messages)
    options = _options(
        context,
        max_tokens=max_tokens,
        temperature=temperature,
        tools=(),
        timeout=timeout,
        extra=dict(params or {}),
    )
    targets = resolve_targets(tenant=tenant, model=model, provider=provider)
    responses: list[ChatResponse] = []

    def call(call_messages: Sequence[ChatMessage], call_options: ChatOptions) -> Completion:
        call_context = dataclasses.replace(
            context, idempotency_key=call_options.idempotency_key or ""
        )
        response = _metered_chat(tenant, targets, call_messages, call_options, call_context)
        responses.append(response)
        return Completion(
            result=response.result,
            target=Target(model=response.model),
            attempts=response.attempts,
        )

    with secret_scope():
        outcome = run_structured(call, chat_messages, options, output)
    last = responses[-1]
    usage = CallUsage()
    for response in responses:
        usage = usage + response.usage
    return StructuredResponse(
        **last.model_dump(exclude={"usage"}),
        usage=usage,
        value=outcome.value,
        repaired=outcome.repaired,
        request_ids=[r.request_id for r in responses if r.request_id is not None],
    )


def embed(
    *,
    tenant: Tenant,
    texts: Sequence[str],
    model: str,
    provider: str | None = None,
    dimensions: int | None = None,
    context: CallContext | None = None,
) -> EmbeddingResponse:
    """Vectors for ``texts`` from an embedding ``model`` (config slug or model id), metered
    like a chat call whose "messages" are the texts and whose output is nothing.
    ``dimensions`` asks a model that can shorten its vectors for that many numbers."""
    if not texts or not all(isinstance(text, str) for text in texts):
        raise InvalidInputError("texts must be a non-empty list of strings.")
    context = context or CallContext()
    targets = resolve_targets(tenant=tenant, model=model, provider=provider)
    as_messages = [ChatMessage(role="user", content=text) for text in texts]
    options = ChatOptions(model="", max_tokens=1)
    with secret_scope():
        call = _start(tenant, targets, as_messages, options, context)
        attempts = Attempts()
        try:
            result = gateway.embed(targets, texts, dimensions=dimensions, attempts=attempts)
        except Exception as exc:
            call.failed(exc, attempts=attempts.count)
            raise
        target = attempts.target or targets[0]
        charged = call.succeeded(
            ChatResult(
                usage=Usage(input_tokens=result.usage.input_tokens),
                model=target.model,
                provider=target.provider_type,
            ),
            attempts=attempts.count,
            provider=target.provider,
            model=target.model,
        )
    return EmbeddingResponse(
        vectors=result.vectors,
        usage=CallUsage.of(charged),
        request_id=charged.request_id,
        provider=target.provider.slug if target.provider is not None else "",
        model=target.model,
    )


# -- streaming ---------------------------------------------------------------------------------


def stream_chat(
    *,
    tenant: Tenant,
    messages: Sequence[ChatMessage | Mapping[str, Any]],
    model: str | None = None,
    provider: str | None = None,
    max_tokens: int | None = None,
    temperature: float | None = None,
    stop: Sequence[str] = (),
    tools: Sequence[ToolSpec | Mapping[str, Any]] = (),
    tool_choice: str = "auto",
    timeout: float | None = None,
    params: Mapping[str, Any] | None = None,
    context: CallContext | None = None,
) -> ChatStreamResponse:
    """:func:`chat`, streamed. The budget is held now (BudgetExceeded and
    NoProviderConfigured are raised here, before any chunk); iterate the result for chunks;
    after the last one, ``.response`` is the ChatResponse.

    Everything the first target needs from the database (its provider config and secrets) is
    read here, so the caller may close its database connection before the first ``next``
    waits on the network; only a fallback, when the first target fails, reads again."""
    context = dataclasses.replace(context or CallContext(), stream=True)
    chat_messages = _messages(messages)
    options = _options(
        context,
        max_tokens=max_tokens,
        temperature=temperature,
        stop=list(stop),
        tools=tools,
        tool_choice=tool_choice,
        timeout=timeout,
        extra=dict(params or {}),
    )
    targets = resolve_targets(tenant=tenant, model=model, provider=provider)
    with secret_scope():
        call = _start(tenant, targets, chat_messages, options, context)
        targets = _first_opened(targets)
        secrets = current_secret_values()
    stream = gateway.stream(targets, chat_messages, options)
    return ChatStreamResponse(call, stream, secrets)


def _first_opened(targets: list[Target]) -> list[Target]:
    """``targets`` with the first one's provider client built (its secrets resolved). One that
    cannot be built is left as it is: the gateway builds it again when the stream is iterated,
    where the failure is recorded (and fallen back from) as before."""
    first = targets[0]
    if first.client is not None:
        return targets
    try:
        client = first.open()
    except Exception:
        return targets
    return [dataclasses.replace(first, client=client), *targets[1:]]


class ChatStreamResponse:
    """The chunks of a metered streamed answer; iterate once.

    The call is recorded exactly once: when the stream ends (``.response`` is then set), when
    it breaks (the error is raised after the chunks that arrived; what they used is charged),
    or when it is closed early (``close()``, or the consumer dropping it mid-way).

    Each step runs in its own secret scope, opened and closed within that step, so the stream
    may be advanced from different threads or contexts (an ASGI server does). A stream that is
    neither iterated nor closed keeps its budget hold until the hold's TTL runs out.
    """

    def __init__(
        self, call: metering.MeteredCall, stream: ChatStream, secrets: frozenset[str]
    ) -> None:
        self.response: ChatResponse | None = None
        self._call = call
        self._stream = stream
        self._secrets = secrets
        self._started = False
        self._done = False
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[ChatChunk]:
        return self._chunks

    def close(self) -> None:
        """Stop early: the provider connection is closed and the call recorded as cancelled."""
        self._chunks.close()
        if not self._done:  # closed before it was ever iterated
            self._step(lambda: self._record_failure(StreamCancelled()))

    @property
    def result(self) -> ChatResult:
        """What arrived so far (the whole answer once the stream ended)."""
        return self._stream.result

    def _step(self, action: Callable[[], T]) -> T:
        with secret_scope(*self._secrets):
            try:
                return action()
            finally:
                self._secrets = current_secret_values()

    def _generate(self) -> Generator[ChatChunk, None, None]:
        chunks = iter(self._stream)
        try:
            while True:
                try:
                    chunk = self._step(lambda: next(chunks))
                except StopIteration:
                    break
                except Exception as exc:
                    self._step(lambda exc=exc: self._record_failure(exc))  # type: ignore[misc]
                    raise
                self._started = True
                yield chunk
        except GeneratorExit:
            self._stream.close()
            if not self._done:
                self._step(lambda: self._record_failure(StreamCancelled()))
            raise
        self.response = self._step(self._record_success)

    def _record_success(self) -> ChatResponse:
        self._done = True
        target = self._stream.target
        assert target is not None
        completion = Completion(
            result=self._stream.result, target=target, attempts=self._stream.attempts.count
        )
        return _response(self._call, completion)

    def _record_failure(self, error: Exception) -> None:
        if self._done:
            return
        self._done = True
        partial = self._stream.result if self._started else None
        self._call.failed(error, attempts=self._stream.attempts.count, partial=partial)


def stream_failure(exc: Exception, *, tenant: Tenant, context: CallContext) -> dict[str, Any]:
    """The ``error`` event of a stream that broke after it started: the NormalizedError, with
    the record of the call and what it was charged (the stream recorded both already)."""
    if isinstance(exc, AutomateError):
        body = error_body(exc.code, exc.message, dict(exc.details or {}))
    else:
        logger.exception("The LLM stream failed unexpectedly")
        body = error_body(
            "internal_error", "An unexpected error occurred. Quote the trace_id to support."
        )
    record = (
        LLMRequest.objects.for_tenant(tenant)
        .filter(idempotency_key=context.idempotency_key)
        .first()
    )
    usage = LLMUsage.objects.filter(request=record).first() if record is not None else None
    body["trace_id"] = context.trace_id
    body["details"] |= {
        "request_id": str(record.pk) if record is not None else None,
        "usage": UsageSerializer(CallUsage.of(usage) if usage else CallUsage()).data,
    }
    return body


# -- prompts for other apps ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LabelledPrompt:
    """A published prompt version a label points at (what an MCP client may list and get)."""

    slug: str
    label: str
    version: int
    description: str
    #: The JSON schema of its variables.
    variables: dict[str, Any]
    required: list[str]


def labelled_prompts(tenant: Tenant) -> list[LabelledPrompt]:
    """Every label of the tenant's prompts with the published version it points at."""
    from automate_llm.models import PromptLabel

    rows = (
        PromptLabel.objects.for_tenant(tenant)
        .select_related("prompt", "version")
        .order_by("prompt__slug", "name")
    )
    return [
        LabelledPrompt(
            slug=row.prompt.slug,
            label=row.name,
            version=row.version.version,
            description=row.prompt.description,
            variables=dict(row.version.variables or {}),
            required=prompts.required_variables(row.version.variables or {}),
        )
        for row in rows
    ]


def render_prompt(
    tenant: Tenant, slug: str, label: str, variables: Mapping[str, Any] | None = None
) -> list[ChatMessage]:
    """The messages of the version ``label`` points at, rendered with ``variables`` (checked
    against its schema: PromptVariablesInvalid names each problem)."""
    return prompts.render(prompts.resolve(tenant, slug, label=label), variables or {})
