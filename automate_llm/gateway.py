"""The gateway: one model call made reliable over an ordered chain of (provider, model) targets.

It does for every provider, the same way, what providers themselves must not do:

* **Retries.** A retryable error (429, 5xx, timeout, dropped connection, malformed answer) is
  retried on the same target up to ``MAX_ATTEMPTS`` times in all, waiting
  ``RETRY_BASE_DELAY * 2**(n-1)`` seconds before retry ``n``, or the provider's ``Retry-After``
  when it sent one; either wait is capped at ``RETRY_MAX_DELAY``. Every attempt of one call
  carries the same ``idempotency_key``.
* **Fallback.** When a target keeps failing, or fails in a way retrying cannot help (a rejected
  request, a missing secret, an egress refusal), the next target is tried, in order. When all
  fail, the last error is raised; its ``details["attempts"]`` lists what was tried.
* **Streams** are retried and failed over only until their first chunk: after that the answer
  is committed to that target, and a break raises ProviderBadResponse once the chunks that
  arrived have been yielded (``ChatStream.result`` then holds the partial answer).
* **Structured output** is validated against a JSON schema or a pydantic model; an invalid
  answer gets one repair attempt (the model sees its answer and the validation errors), then
  StructuredOutputInvalid.

Metering, budgets and the audit record are not done here: ``services`` wraps each gateway call.
Sleeping is injectable (``Gateway(sleep=...)``) so tests never wait.
"""

from __future__ import annotations

import json
import logging
import re
import time
from collections.abc import Callable, Generator, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

import jsonschema
import pydantic
from django.core.exceptions import ImproperlyConfigured

from automate_core.errors import AutomateError, InvalidInputError
from automate_llm.conf import llm_settings
from automate_llm.errors import (
    LLMError,
    NoProviderConfigured,
    ProviderBadResponse,
    ProviderConfigError,
    StructuredOutputInvalid,
)
from automate_llm.types import (
    ChatChunk,
    ChatMessage,
    ChatOptions,
    ChatResult,
    EmbeddingResult,
    ToolCall,
    Usage,
)

if TYPE_CHECKING:
    from automate_llm.models import LLMModelConfig
    from automate_llm.models import LLMProvider as ProviderRow
    from automate_llm.providers.base import LLMProvider

__all__ = [
    "Attempts",
    "ChatStream",
    "Completion",
    "Gateway",
    "OutputSchema",
    "StructuredCompletion",
    "Target",
    "run_structured",
]

T = TypeVar("T")

logger = logging.getLogger("automate.llm.gateway")

#: How many validation errors the repair prompt and the final error quote.
MAX_QUOTED_ERRORS = 20


@dataclass(frozen=True)
class Target:
    """One (provider, model) pair a call may go to, with the defaults of its model config.

    ``client`` is a ready provider instance; without one, the provider row's
    :meth:`~automate_llm.models.LLMProvider.get_client` builds one (resolving its secrets) the
    first time the target is actually tried, so fallbacks that are never needed never touch
    their secrets.
    """

    model: str
    provider: ProviderRow | None = None
    client: LLMProvider | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    params: Mapping[str, Any] = field(default_factory=dict)
    #: The model config's slug, when the target came from one.
    config_slug: str = ""

    @classmethod
    def from_config(cls, config: LLMModelConfig) -> Target:
        return cls(
            model=config.model_id,
            provider=config.provider,
            max_tokens=config.max_tokens,
            temperature=config.temperature,
            params=dict(config.params or {}),
            config_slug=config.slug,
        )

    @property
    def provider_type(self) -> str:
        if self.provider is not None:
            return self.provider.provider_type
        return self.client.provider_type if self.client is not None else ""

    @property
    def label(self) -> str:
        """``provider-slug/model`` for messages and records."""
        name = self.provider.slug if self.provider is not None else self.provider_type
        return f"{name}/{self.model}"

    def open(self) -> LLMProvider:
        """The provider instance to call; config problems are ProviderConfigError."""
        if self.client is not None:
            return self.client
        if self.provider is None:
            raise ProviderConfigError(f"target {self.model!r} has neither a provider nor a client")
        try:
            client: LLMProvider = self.provider.get_client()
        except ImproperlyConfigured as exc:  # the provider plugin is not installed
            raise ProviderConfigError(str(exc), details={"provider": self.provider.slug}) from exc
        return client

    def options(self, options: ChatOptions) -> ChatOptions:
        """``options`` for this target: its model, and its defaults where the call set none."""
        max_tokens = options.max_tokens or self.max_tokens or llm_settings.DEFAULT_MAX_TOKENS
        temperature = options.temperature if options.temperature is not None else self.temperature
        return options.model_copy(
            update={
                "model": self.model,
                "max_tokens": max_tokens,
                "temperature": temperature,
                "extra": {**self.params, **options.extra},
            }
        )


@dataclass
class Attempts:
    """What one gateway call tried: filled in as it goes, readable after success or failure."""

    count: int = 0
    #: The target of the latest attempt: the one that answered, when the call succeeded.
    target: Target | None = None
    failures: list[dict[str, Any]] = field(default_factory=list)

    def failed(self, target: Target, error: Exception) -> None:
        self.failures.append(
            {
                "target": target.label,
                "attempt": self.count,
                "code": getattr(error, "code", type(error).__name__),
                "message": str(error),
            }
        )


@dataclass(frozen=True)
class Completion:
    """A finished chat call: the result and which target gave it after how many attempts."""

    result: ChatResult
    target: Target
    attempts: int


@dataclass(frozen=True)
class StructuredCompletion:
    """A structured answer: ``value`` is the validated JSON (a pydantic model instance when
    the schema was a model class); ``completions`` are the calls made (two after a repair)."""

    value: Any
    completions: list[Completion]

    @property
    def repaired(self) -> bool:
        return len(self.completions) > 1

    @property
    def completion(self) -> Completion:
        return self.completions[-1]


class Gateway:
    """Runs calls over targets with retries and fallback; settings are read per call unless
    given here."""

    def __init__(
        self,
        *,
        sleep: Callable[[float], None] = time.sleep,
        max_attempts: int | None = None,
        base_delay: float | None = None,
        max_delay: float | None = None,
    ) -> None:
        self.sleep = sleep
        self._max_attempts = max_attempts
        self._base_delay = base_delay
        self._max_delay = max_delay

    @property
    def max_attempts(self) -> int:
        value = self._max_attempts if self._max_attempts is not None else llm_settings.MAX_ATTEMPTS
        return max(1, int(value))

    def delay(self, attempt: int, error: Exception) -> float:
        """Seconds to wait before retrying after failed attempt number ``attempt`` (1-based)."""
        base = self._base_delay if self._base_delay is not None else llm_settings.RETRY_BASE_DELAY
        cap = self._max_delay if self._max_delay is not None else llm_settings.RETRY_MAX_DELAY
        retry_after = getattr(error, "retry_after", None)
        wanted = retry_after if retry_after is not None else float(base) * 2 ** (attempt - 1)
        return max(0.0, min(float(wanted), float(cap)))

    # -- the loop ------------------------------------------------------------------------------

    def run(
        self,
        targets: Sequence[Target],
        attempt: Callable[[LLMProvider, Target], T],
        attempts: Attempts | None = None,
    ) -> T:
        """``attempt(client, target)`` over ``targets`` with retries and fallback."""
        log = attempts if attempts is not None else Attempts()
        if not targets:
            raise NoProviderConfigured()
        last_error: AutomateError | None = None
        for target in targets:
            try:
                client = target.open()
            except AutomateError as exc:
                log.target = target
                log.failed(target, exc)
                last_error = exc
                logger.warning("LLM target %s is unusable (%s); falling back", target.label, exc)
                continue
            for number in range(1, self.max_attempts + 1):
                log.count += 1
                log.target = target
                try:
                    return attempt(client, target)
                except AutomateError as exc:
                    log.failed(target, exc)
                    last_error = exc
                    if not getattr(exc, "retryable", False) or number == self.max_attempts:
                        logger.warning(
                            "LLM call to %s failed (%s: %s) after %d attempt(s)",
                            target.label,
                            exc.code,
                            exc,
                            number,
                        )
                        break
                    wait = self.delay(number, exc)
                    logger.info(
                        "LLM call to %s failed (%s); retrying in %.2fs",
                        target.label,
                        exc.code,
                        wait,
                    )
                    self.sleep(wait)
        assert last_error is not None
        if len(log.failures) > 1 and isinstance(last_error.details, dict):
            last_error.details = {**last_error.details, "attempts": log.failures}
        raise last_error

    # -- calls ---------------------------------------------------------------------------------

    def chat(
        self,
        targets: Sequence[Target],
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        *,
        attempts: Attempts | None = None,
    ) -> Completion:
        log = attempts if attempts is not None else Attempts()

        def attempt(client: LLMProvider, target: Target) -> Completion:
            result = client.chat(messages, target.options(options))
            return Completion(result=result, target=target, attempts=log.count)

        return self.run(targets, attempt, log)

    def stream(
        self,
        targets: Sequence[Target],
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        *,
        attempts: Attempts | None = None,
    ) -> ChatStream:
        """A stream of the answer; nothing is sent until it is iterated."""
        return ChatStream(self, targets, messages, options, attempts or Attempts())

    def structured(
        self,
        targets: Sequence[Target],
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        schema: OutputSchema,
    ) -> StructuredCompletion:
        def call(call_messages: Sequence[ChatMessage], call_options: ChatOptions) -> Completion:
            return self.chat(targets, call_messages, call_options)

        return run_structured(call, messages, options, schema)

    def embed(
        self,
        targets: Sequence[Target],
        texts: Sequence[str],
        *,
        dimensions: int | None = None,
        attempts: Attempts | None = None,
    ) -> EmbeddingResult:
        def attempt(client: LLMProvider, target: Target) -> EmbeddingResult:
            if not client.supports_embeddings:
                raise ProviderConfigError(
                    f"{target.provider_type} has no embeddings API",
                    details={"target": target.label},
                )
            return client.embed(texts, model=target.model, dimensions=dimensions)

        return self.run(targets, attempt, attempts)


class ChatStream:
    """The chunks of one streamed answer; iterate once.

    Retries and fallback happen before the first chunk. ``result`` is the answer assembled
    from the chunks so far: complete after the iteration ends, partial (``finish_reason``
    ``"error"``) when the stream broke. ``close()`` stops a stream early.
    """

    def __init__(
        self,
        gateway: Gateway,
        targets: Sequence[Target],
        messages: Sequence[ChatMessage],
        options: ChatOptions,
        attempts: Attempts,
    ) -> None:
        self.attempts = attempts
        self._gateway = gateway
        self._targets = targets
        self._messages = messages
        self._options = options
        self._text: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._finish: str | None = None
        self._usage: Usage | None = None
        self._request_id: str | None = None
        self._chunks = self._generate()

    def __iter__(self) -> Iterator[ChatChunk]:
        return self._chunks

    def close(self) -> None:
        self._chunks.close()

    @property
    def target(self) -> Target | None:
        return self.attempts.target

    @property
    def finished(self) -> bool:
        return self._finish is not None

    @property
    def usage_reported(self) -> bool:
        """Whether the provider reported usage (some compatible servers do not in streams)."""
        return self._usage is not None

    @property
    def result(self) -> ChatResult:
        target = self.attempts.target
        return ChatResult(
            text="".join(self._text),
            tool_calls=list(self._tool_calls),
            finish_reason=self._finish or "error",  # type: ignore[arg-type]
            usage=self._usage or Usage(),
            model=target.model if target else "",
            provider=target.provider_type if target else "",
            request_id=self._request_id,
        )

    def _take(self, chunk: ChatChunk) -> ChatChunk:
        self._text.append(chunk.text)
        self._tool_calls.extend(chunk.tool_calls)
        if chunk.finish_reason is not None:
            self._finish = chunk.finish_reason
        if chunk.usage is not None:
            self._usage = chunk.usage
        self._request_id = chunk.request_id or self._request_id
        return chunk

    def _generate(self) -> Generator[ChatChunk, None, None]:
        def first(client: LLMProvider, target: Target) -> tuple[Iterator[ChatChunk], ChatChunk]:
            chunks = iter(client.stream(self._messages, target.options(self._options)))
            try:
                return chunks, next(chunks)
            except StopIteration:
                raise ProviderBadResponse(
                    f"{target.provider_type} sent an empty stream",
                    details={"target": target.label},
                ) from None

        chunks, head = self._gateway.run(self._targets, first, self.attempts)
        try:
            yield self._take(head)
            for chunk in chunks:
                yield self._take(chunk)
        except LLMError:
            raise
        except Exception as exc:  # a provider plugin that broke its contract
            raise ProviderBadResponse(f"the stream broke: {exc}") from exc
        finally:
            close = getattr(chunks, "close", None)
            if close is not None:
                close()
        if self._finish is None:
            raise ProviderBadResponse("the stream ended without a finish reason")


# -- structured output -------------------------------------------------------------------------


class OutputMismatch(Exception):
    """An answer that does not match the schema; ``errors`` say where and why."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("; ".join(errors))
        self.errors = errors


class OutputSchema:
    """What a structured answer must match: a pydantic model class or a JSON schema.

    A JSON schema is checked against its metaschema up front (InvalidInputError) and answers
    are validated with ``jsonschema`` (draft 2020-12 unless the schema's ``$schema`` names
    another); a model class validates with pydantic and :meth:`parse` returns an instance.
    """

    def __init__(self, schema: Mapping[str, Any] | type[pydantic.BaseModel]) -> None:
        self.model: type[pydantic.BaseModel] | None = None
        if isinstance(schema, type) and issubclass(schema, pydantic.BaseModel):
            self.model = schema
            self.json_schema: dict[str, Any] = schema.model_json_schema()
            self._validator = None
            return
        if not isinstance(schema, Mapping):
            raise InvalidInputError("The output schema must be a JSON schema object or a model.")
        self.json_schema = dict(schema)
        cls = jsonschema.validators.validator_for(self.json_schema, jsonschema.Draft202012Validator)
        try:
            cls.check_schema(self.json_schema)
        except jsonschema.SchemaError as exc:
            raise InvalidInputError(
                f"The output schema is not a valid JSON schema: {exc.message}",
                details={"path": _path(exc.absolute_path)},
            ) from None
        self._validator = cls(self.json_schema)

    def parse(self, text: str) -> Any:
        """The validated value of the JSON in ``text``; OutputMismatch otherwise."""
        try:
            value = json.loads(_unfenced(text))
        except ValueError as exc:
            raise OutputMismatch([f"the answer is not valid JSON ({exc})"]) from None
        if self.model is not None:
            try:
                return self.model.model_validate(value)
            except pydantic.ValidationError as exc:
                raise OutputMismatch(
                    [f"{_path(error['loc'])}: {error['msg']}" for error in exc.errors()]
                ) from None
        assert self._validator is not None
        errors = sorted(self._validator.iter_errors(value), key=lambda e: list(e.absolute_path))
        if errors:
            raise OutputMismatch([f"{_path(e.absolute_path)}: {e.message}" for e in errors])
        return value


def run_structured(
    call: Callable[[Sequence[ChatMessage], ChatOptions], Completion],
    messages: Sequence[ChatMessage],
    options: ChatOptions,
    schema: OutputSchema,
) -> StructuredCompletion:
    """Ask for an answer matching ``schema`` through ``call``; repair once, then give up.

    ``call`` makes one gateway chat call (retries and fallback included); services pass one
    that meters each call.
    """
    options = options.model_copy(update={"json_schema": schema.json_schema})
    first = call(messages, options)
    try:
        return StructuredCompletion(value=schema.parse(first.result.text), completions=[first])
    except OutputMismatch as mismatch:
        errors = mismatch.errors[:MAX_QUOTED_ERRORS]
    # A different request: it must not be answered from the provider's idempotency cache.
    key = options.idempotency_key
    repair_options = options.model_copy(
        update={"idempotency_key": f"{key}:repair" if key else None}
    )
    second = call(repair_messages(messages, first.result.text, errors), repair_options)
    try:
        return StructuredCompletion(
            value=schema.parse(second.result.text), completions=[first, second]
        )
    except OutputMismatch as mismatch:
        raise StructuredOutputInvalid(
            details={
                "errors": mismatch.errors[:MAX_QUOTED_ERRORS],
                "first_errors": errors,
                "output": second.result.text[:2000],
            }
        ) from None


def repair_messages(
    messages: Sequence[ChatMessage], answer: str, errors: Sequence[str]
) -> list[ChatMessage]:
    """The conversation for the repair attempt: the invalid answer, then what was wrong."""
    listed = "\n".join(f"- {error}" for error in errors)
    return [
        *messages,
        ChatMessage(role="assistant", content=answer or "(empty answer)"),
        ChatMessage(
            role="user",
            content=(
                "Your answer does not match the required JSON schema:\n"
                f"{listed}\n"
                "Answer again with only the corrected JSON value, matching the schema exactly."
            ),
        ),
    ]


_FENCE = re.compile(r"^\s*```(?:json)?\s*\n(.*?)\n?```\s*$", re.DOTALL)


def _unfenced(text: str) -> str:
    """``text`` without the Markdown code fence some models put around JSON."""
    match = _FENCE.match(text)
    return match.group(1) if match else text


def _path(parts: Any) -> str:
    path = "$"
    for part in parts:
        path += f"[{part}]" if isinstance(part, int) else f".{part}"
    return path
