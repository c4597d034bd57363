"""OpenAI Chat Completions and Embeddings through the official ``openai`` SDK.

``base_url`` makes it speak to any OpenAI-compatible server (vLLM, Ollama, LM Studio, a
gateway). Config keys: ``api_key`` (a SecretRef; optional only with a ``base_url``, for local
servers without keys), ``base_url``, ``organization``, ``project``, ``headers``, ``timeout``,
``default_model``, and ``max_tokens_param`` (``max_completion_tokens``, which OpenAI's own API
wants, or ``max_tokens``, which most compatible servers know; chosen from ``base_url`` when
unset).

Guarantees: the SDK never retries (``max_retries=0``; the gateway does) and reads nothing from
the process environment for this call (``OPENAI_BASE_URL``, ``OPENAI_ORG_ID``,
``OPENAI_CUSTOM_HEADERS``... belong to the operator, not to a tenant's provider); every request
passes the tenant's egress policy; usage counts cached input (``prompt_tokens_details``) inside
``input_tokens`` and again as ``cached_tokens``.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import openai

from automate_llm.conf import llm_settings
from automate_llm.errors import ProviderBadResponse
from automate_llm.providers import sdk
from automate_llm.providers.base import LLMProvider
from automate_llm.types import (
    ChatChunk,
    ChatMessage,
    ChatOptions,
    ChatResult,
    EmbeddingResult,
    FinishReason,
    ToolCall,
    Usage,
)

DEFAULT_BASE_URL = "https://api.openai.com/v1"
FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
}
CONFIG_KEYS = {
    "api_key",
    "base_url",
    "organization",
    "project",
    "headers",
    "timeout",
    "default_model",
    "max_tokens_param",
}


class OpenAIProvider(LLMProvider):
    provider_type = "openai"
    supports_streaming = True
    supports_embeddings = True

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = sdk.config_problems(
            config, allowed=CONFIG_KEYS, api_key_required=not config.get("base_url")
        )
        param = config.get("max_tokens_param")
        if param is not None and param not in ("max_tokens", "max_completion_tokens"):
            problems.append("max_tokens_param must be max_tokens or max_completion_tokens")
        return problems

    # -- the SDK client ------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        return str(self.config.get("base_url") or DEFAULT_BASE_URL)

    def client(self) -> Any:
        """The SDK client for this call, built once per provider instance (cheap: the
        connection pool lives in the shared egress client)."""
        if getattr(self, "_client", None) is None:
            client = openai.OpenAI(
                # A local server without keys still needs a non-empty value for the SDK.
                api_key=str(self.config.get("api_key") or "none"),
                base_url=self.base_url,
                organization=self.config.get("organization"),
                project=self.config.get("project"),
                max_retries=0,
                timeout=self.timeout(None),
                http_client=sdk.http_client(self.tenant),
            )
            # Explicit values win over the SDK's fallbacks to OPENAI_* environment variables.
            client.organization = self.config.get("organization")
            client.project = self.config.get("project")
            client._custom_headers = dict(self.config.get("headers") or {})
            self._client = client
        return self._client

    def timeout(self, options: ChatOptions | None) -> float:
        if options is not None and options.timeout:
            return float(options.timeout)
        return float(self.config.get("timeout") or llm_settings.TIMEOUT)

    # -- requests ------------------------------------------------------------------------------

    def _max_tokens_param(self) -> str:
        param = self.config.get("max_tokens_param")
        if param:
            return str(param)
        return "max_completion_tokens" if self.base_url == DEFAULT_BASE_URL else "max_tokens"

    def request(
        self, messages: Sequence[ChatMessage], options: ChatOptions, *, stream: bool
    ) -> dict[str, Any]:
        """The keyword arguments of ``chat.completions.create`` for this call."""
        body: dict[str, Any] = {
            "model": options.model,
            "messages": [_message(message) for message in messages],
        }
        if options.max_tokens is not None:
            body[self._max_tokens_param()] = options.max_tokens
        if options.temperature is not None:
            body["temperature"] = options.temperature
        if options.stop:
            body["stop"] = list(options.stop)
        if options.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.parameters,
                    },
                }
                for tool in options.tools
            ]
            body["tool_choice"] = _tool_choice(options.tool_choice)
        if options.json_schema is not None:
            body["response_format"] = {
                "type": "json_schema",
                "json_schema": {
                    "name": schema_name(options.json_schema),
                    "schema": options.json_schema,
                    # Strict mode refuses most schemas pydantic writes; the gateway validates.
                    "strict": False,
                },
            }
        if stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}
        if options.extra:
            body["extra_body"] = dict(options.extra)
        if options.idempotency_key:
            body["extra_headers"] = {"Idempotency-Key": options.idempotency_key}
        body["timeout"] = self.timeout(options)
        return body

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        with sdk.translated(openai, self.provider_type):
            completion = self.client().chat.completions.create(
                **self.request(messages, options, stream=False)
            )
            return self._result(completion)

    def _result(self, completion: Any) -> ChatResult:
        choices = getattr(completion, "choices", None)
        if not choices:
            raise ProviderBadResponse(
                "openai sent a response without choices", details={"provider": "openai"}
            )
        choice = choices[0]
        message = choice.message
        if message is None:
            raise ProviderBadResponse(
                "openai sent a choice without a message", details={"provider": "openai"}
            )
        calls = [
            ToolCall(
                id=call.id,
                name=call.function.name,
                arguments=sdk.parse_arguments(call.function.arguments, "openai"),
            )
            for call in message.tool_calls or []
        ]
        finish = FINISH_REASONS.get(choice.finish_reason or "", "stop")
        text = message.content or ""
        if getattr(message, "refusal", None):
            text, finish = message.refusal, "content_filter"
        return ChatResult(
            text=text,
            tool_calls=calls,
            finish_reason=finish,
            usage=_usage(completion.usage),
            model=completion.model or "",
            provider=self.provider_type,
            request_id=getattr(completion, "_request_id", None),
        )

    # -- stream --------------------------------------------------------------------------------

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions) -> Iterator[ChatChunk]:
        with sdk.translated(openai, self.provider_type):
            response = self.client().chat.completions.create(
                **self.request(messages, options, stream=True)
            )
        request_id = response.response.headers.get("x-request-id")
        try:
            with sdk.translated(openai, self.provider_type, mid_stream=True):
                yield from self._chunks(response, request_id)
        finally:
            response.close()

    def _chunks(self, response: Any, request_id: str | None) -> Iterator[ChatChunk]:
        calls: dict[int, dict[str, str]] = {}
        finish: FinishReason | None = None
        usage: Usage | None = None
        for event in response:
            if event.usage is not None:
                usage = _usage(event.usage)
            for choice in event.choices or []:
                delta = choice.delta
                if delta is not None:
                    for piece in delta.tool_calls or []:
                        call = calls.setdefault(piece.index, {"id": "", "name": "", "args": ""})
                        call["id"] = piece.id or call["id"]
                        if piece.function is not None:
                            call["name"] = piece.function.name or call["name"]
                            call["args"] += piece.function.arguments or ""
                    if delta.content:
                        yield ChatChunk(text=delta.content, request_id=request_id)
                if choice.finish_reason:
                    finish = FINISH_REASONS.get(choice.finish_reason, "stop")
        if finish is None:
            raise ProviderBadResponse(
                "openai's stream ended before the answer was complete",
                details={"provider": "openai"},
            )
        tool_calls = [
            ToolCall(
                id=call["id"],
                name=call["name"],
                arguments=sdk.parse_arguments(call["args"], "openai"),
            )
            for _, call in sorted(calls.items())
        ]
        yield ChatChunk(
            tool_calls=tool_calls, finish_reason=finish, usage=usage, request_id=request_id
        )

    # -- embeddings ----------------------------------------------------------------------------

    def embed(
        self, texts: Sequence[str], *, model: str, dimensions: int | None = None
    ) -> EmbeddingResult:
        shorten = {"dimensions": dimensions} if dimensions is not None else {}
        with sdk.translated(openai, self.provider_type):
            response = self.client().embeddings.create(
                model=model,
                input=list(texts),
                encoding_format="float",
                timeout=self.timeout(None),
                **shorten,
            )
            data = sorted(response.data, key=lambda item: item.index)
            if len(data) != len(texts):
                raise ProviderBadResponse(
                    f"openai returned {len(data)} embeddings for {len(texts)} texts",
                    details={"provider": "openai"},
                )
            tokens = response.usage.prompt_tokens if response.usage is not None else 0
            return EmbeddingResult(
                vectors=[list(item.embedding) for item in data],
                model=response.model or model,
                usage=Usage(input_tokens=tokens or 0),
            )


def _message(message: ChatMessage) -> dict[str, Any]:
    if message.role == "tool":
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.content}
    body: dict[str, Any] = {"role": message.role, "content": message.content}
    if message.name and message.role in ("user", "system"):
        body["name"] = message.name
    if message.role == "assistant" and message.tool_calls:
        body["content"] = message.content or None
        body["tool_calls"] = [
            {
                "id": call.id,
                "type": "function",
                "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
            }
            for call in message.tool_calls
        ]
    return body


def _tool_choice(choice: str) -> Any:
    if choice in ("auto", "none", "required"):
        return choice
    return {"type": "function", "function": {"name": choice}}


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    details = getattr(usage, "prompt_tokens_details", None)
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cached_tokens=(getattr(details, "cached_tokens", None) or 0) if details else 0,
    )


def schema_name(schema: Mapping[str, Any]) -> str:
    """A name for ``schema`` as OpenAI wants it (``[A-Za-z0-9_-]{1,64}``): its title or
    ``response``."""
    title = re.sub(r"[^A-Za-z0-9_-]+", "_", str(schema.get("title") or "")).strip("_")
    return title[:64] or "response"
