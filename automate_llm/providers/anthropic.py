"""Anthropic's Messages API through the official ``anthropic`` SDK.

Config keys: ``api_key`` (a SecretRef, required), ``base_url``, ``headers``, ``timeout``,
``default_model``.

How the normalized conversation maps onto the Messages API:

* system turns become the top-level ``system`` prompt (joined in order);
* a tool answer becomes a ``tool_result`` block in a user turn, and consecutive turns of one
  role are merged, so the results of parallel tool calls travel together as the API requires;
* an assistant turn's tool calls become ``tool_use`` blocks;
* structured output (``json_schema``) is a forced call of one tool whose ``input_schema`` is
  the schema (wrapped in an object when the schema is not one); the tool's input comes back as
  the result's text, so callers see the same JSON text as from OpenAI.

Guarantees: the SDK never retries (the gateway does), uses the given key and base URL and never
the process environment (``ANTHROPIC_*`` variables, profile files); every request passes the
tenant's egress policy; ``input_tokens`` counts all input (Anthropic reports cache reads and
writes apart) and ``cached_tokens`` the cache reads.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import anthropic

from automate_llm.conf import llm_settings
from automate_llm.errors import ProviderBadResponse
from automate_llm.providers import sdk
from automate_llm.providers.base import LLMProvider
from automate_llm.types import (
    ChatChunk,
    ChatMessage,
    ChatOptions,
    ChatResult,
    FinishReason,
    ToolCall,
    Usage,
)

DEFAULT_BASE_URL = "https://api.anthropic.com"
#: The tool a structured-output call is forced to use.
STRUCTURED_TOOL = "structured_output"
#: The property that carries a non-object structured answer inside the tool's object input.
WRAPPED_KEY = "value"
STOP_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "pause_turn": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}
CONFIG_KEYS = {"api_key", "base_url", "headers", "timeout", "default_model"}


class AnthropicProvider(LLMProvider):
    provider_type = "anthropic"
    supports_streaming = True
    supports_embeddings = False

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        return sdk.config_problems(config, allowed=CONFIG_KEYS, api_key_required=True)

    # -- the SDK client ------------------------------------------------------------------------

    def client(self) -> Any:
        """The SDK client for this call (cheap: the pool lives in the shared egress client)."""
        if getattr(self, "_client", None) is None:
            client = anthropic.Anthropic(
                api_key=str(self.config.get("api_key") or ""),
                base_url=str(self.config.get("base_url") or DEFAULT_BASE_URL),
                max_retries=0,
                timeout=self.timeout(None),
                http_client=sdk.http_client(self.tenant),
            )
            # Only the configured headers: ANTHROPIC_CUSTOM_HEADERS belongs to the operator.
            client._custom_headers = dict(self.config.get("headers") or {})
            self._client = client
        return self._client

    def timeout(self, options: ChatOptions | None) -> float:
        if options is not None and options.timeout:
            return float(options.timeout)
        return float(self.config.get("timeout") or llm_settings.TIMEOUT)

    # -- requests ------------------------------------------------------------------------------

    def request(
        self, messages: Sequence[ChatMessage], options: ChatOptions, *, stream: bool
    ) -> dict[str, Any]:
        """The keyword arguments of ``messages.create`` for this call."""
        system = "\n\n".join(m.content for m in messages if m.role == "system" and m.content)
        body: dict[str, Any] = {
            "model": options.model,
            "max_tokens": options.max_tokens or llm_settings.DEFAULT_MAX_TOKENS,
            "messages": _turns(messages),
        }
        if system:
            body["system"] = system
        extra = dict(options.extra)
        if options.temperature is not None:
            # anthropic 2.x has no temperature argument: newer models refuse one ("temperature
            # is deprecated for this model"), older ones still take it, so it is sent only when
            # the call or the model config sets it.
            extra.setdefault("temperature", options.temperature)
        if options.stop:
            body["stop_sequences"] = list(options.stop)
        tools = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.parameters}
            for tool in options.tools
        ]
        if options.json_schema is not None:
            tools.append(
                {
                    "name": STRUCTURED_TOOL,
                    "description": "Give the answer by calling this tool: its input is the "
                    "answer, matching the schema.",
                    "input_schema": _object_schema(options.json_schema),
                }
            )
            body["tool_choice"] = {"type": "tool", "name": STRUCTURED_TOOL}
        elif tools:
            body["tool_choice"] = _tool_choice(options.tool_choice)
        if tools:
            body["tools"] = tools
        if stream:
            body["stream"] = True
        if extra:
            body["extra_body"] = extra
        if options.idempotency_key:
            body["extra_headers"] = {"Idempotency-Key": options.idempotency_key}
        body["timeout"] = self.timeout(options)
        return body

    # -- chat ----------------------------------------------------------------------------------

    def chat(self, messages: Sequence[ChatMessage], options: ChatOptions) -> ChatResult:
        with sdk.translated(anthropic, self.provider_type):
            message = self.client().messages.create(**self.request(messages, options, stream=False))
            return self._result(message, structured=options.json_schema)

    def _result(self, message: Any, *, structured: dict[str, Any] | None) -> ChatResult:
        content = getattr(message, "content", None)
        if not isinstance(content, list):
            raise ProviderBadResponse(
                "anthropic sent a message without content", details={"provider": "anthropic"}
            )
        texts: list[str] = []
        calls: list[ToolCall] = []
        answered = False
        for block in content:
            if block.type == "text":
                texts.append(block.text)
            elif block.type == "tool_use":
                if structured is not None and block.name == STRUCTURED_TOOL:
                    texts = [json.dumps(_unwrap(structured, block.input))]
                    answered = True
                else:
                    calls.append(ToolCall(id=block.id, name=block.name, arguments=block.input))
        finish = STOP_REASONS.get(message.stop_reason or "", "stop")
        if answered and not calls:
            finish = "stop"
        return ChatResult(
            text="".join(texts),
            tool_calls=calls,
            finish_reason=finish,
            usage=_usage(message.usage),
            model=message.model or "",
            provider=self.provider_type,
            request_id=getattr(message, "_request_id", None),
        )

    # -- stream --------------------------------------------------------------------------------

    def stream(self, messages: Sequence[ChatMessage], options: ChatOptions) -> Iterator[ChatChunk]:
        with sdk.translated(anthropic, self.provider_type):
            response = self.client().messages.create(**self.request(messages, options, stream=True))
        request_id = response.response.headers.get("request-id")
        try:
            with sdk.translated(anthropic, self.provider_type, mid_stream=True):
                yield from self._chunks(response, request_id, options.json_schema)
        finally:
            response.close()

    def _chunks(
        self, events: Any, request_id: str | None, structured: dict[str, Any] | None
    ) -> Iterator[ChatChunk]:
        # index -> (tool_use block or None for text, JSON text received so far)
        blocks: dict[int, tuple[Any, list[str]]] = {}
        calls: list[ToolCall] = []
        usage = Usage()
        finish: FinishReason | None = None
        answered = False
        # A structured answer that is the tool's whole input streams as text as it arrives.
        passthrough = structured is not None and _object_schema(structured) is structured
        for event in events:
            kind = event.type
            if kind == "message_start":
                usage = _usage(event.message.usage)
            elif kind == "content_block_start":
                block = event.content_block
                blocks[event.index] = (block if block.type == "tool_use" else None, [])
            elif kind == "content_block_delta":
                tool, parts = blocks.get(event.index, (None, []))
                delta = event.delta
                if delta.type == "text_delta" and delta.text:
                    yield ChatChunk(text=delta.text, request_id=request_id)
                elif delta.type == "input_json_delta":
                    parts.append(delta.partial_json)
                    if passthrough and tool is not None and tool.name == STRUCTURED_TOOL:
                        yield ChatChunk(text=delta.partial_json, request_id=request_id)
            elif kind == "content_block_stop":
                tool, parts = blocks.get(event.index, (None, []))
                if tool is None:
                    continue
                arguments = sdk.parse_arguments("".join(parts), "anthropic")
                if structured is not None and tool.name == STRUCTURED_TOOL:
                    answered = True
                    if not passthrough:
                        text = json.dumps(_unwrap(structured, arguments))
                        yield ChatChunk(text=text, request_id=request_id)
                else:
                    calls.append(ToolCall(id=tool.id, name=tool.name, arguments=arguments))
            elif kind == "message_delta":
                usage = _merge_usage(usage, event.usage)
                finish = STOP_REASONS.get(event.delta.stop_reason or "", "stop")
            elif kind == "message_stop":
                if answered and not calls:
                    finish = "stop"
                yield ChatChunk(
                    tool_calls=calls,
                    finish_reason=finish or "stop",
                    usage=usage,
                    request_id=request_id,
                )
                return
        raise ProviderBadResponse(
            "anthropic's stream ended before message_stop", details={"provider": "anthropic"}
        )


def _turns(messages: Sequence[ChatMessage]) -> list[dict[str, Any]]:
    """Messages API turns: no system turns, tool answers as user turns, one role per turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _blocks(message)
        if not blocks:
            continue
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # Tool results first: the API wants them at the start of the user turn.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    return turns


def _blocks(message: ChatMessage) -> list[dict[str, Any]]:
    if message.role == "tool":
        return [
            {
                "type": "tool_result",
                "tool_use_id": message.tool_call_id,
                "content": message.content or "(no output)",
            }
        ]
    blocks: list[dict[str, Any]] = []
    if message.content:
        blocks.append({"type": "text", "text": message.content})
    for call in message.tool_calls:
        blocks.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
        )
    return blocks


def _tool_choice(choice: str) -> dict[str, Any]:
    if choice == "required":
        return {"type": "any"}
    if choice in ("auto", "none"):
        return {"type": choice}
    return {"type": "tool", "name": choice}


def _object_schema(schema: dict[str, Any]) -> dict[str, Any]:
    """``schema`` itself when it describes an object (tool inputs must be objects), else an
    object with one required property holding it."""
    if schema.get("type") == "object":
        return schema
    return {"type": "object", "properties": {WRAPPED_KEY: schema}, "required": [WRAPPED_KEY]}


def _unwrap(schema: dict[str, Any], arguments: Any) -> Any:
    if _object_schema(schema) is schema or not isinstance(arguments, dict):
        return arguments
    return arguments.get(WRAPPED_KEY)


def _usage(usage: Any) -> Usage:
    if usage is None:
        return Usage()
    cached = getattr(usage, "cache_read_input_tokens", None) or 0
    written = getattr(usage, "cache_creation_input_tokens", None) or 0
    return Usage(
        input_tokens=(usage.input_tokens or 0) + cached + written,
        output_tokens=usage.output_tokens or 0,
        cached_tokens=cached,
    )


def _merge_usage(usage: Usage, delta: Any) -> Usage:
    """``message_delta`` carries cumulative counts; fields it leaves out keep their value."""
    if delta is None:
        return usage
    output = getattr(delta, "output_tokens", None)
    update: dict[str, int] = {}
    if output is not None:
        update["output_tokens"] = output
    if getattr(delta, "input_tokens", None) is not None:
        update["input_tokens"] = _usage(delta).input_tokens
        update["cached_tokens"] = _usage(delta).cached_tokens
    return usage.model_copy(update=update)
