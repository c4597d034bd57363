"""A local server that speaks Anthropic's Messages API.

Shapes follow the API reference: a ``message`` object with content blocks (``text``,
``tool_use``), ``stop_reason`` (``end_turn``, ``max_tokens``, ``tool_use``, ``refusal``), usage
with ``cache_read_input_tokens`` kept apart from ``input_tokens``; streams as the named SSE
events ``message_start``, ``content_block_start``/``_delta``/``_stop`` (``text_delta``,
``input_json_delta``), ``ping``, ``message_delta`` and ``message_stop``; the request id in
``request-id``; errors as ``{"type": "error", "error": {"type", "message"}}``.

Like the real API it refuses what the SDK must get right: an API key (``x-api-key``, or
``Authorization: Bearer`` as anthropic 2.x sends it), the ``anthropic-version`` header, a
required ``max_tokens``, only ``user``/``assistant`` turns starting with ``user`` (the system
prompt is a top-level field), non-empty text blocks, and every ``tool_use`` answered by a
``tool_result`` in the very next user turn.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

from automate_llm.testing.behaviours import CutStream, Embeddings, Reply
from automate_llm.testing.wire_server import (
    Exchange,
    RecordedRequest,
    WireRefusal,
    WireServer,
    call_ids,
    pieces,
    split_in_two,
)

MESSAGES_PATH = "/v1/messages"
STOP_REASONS = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
}
ERROR_TYPES = {
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}
BLOCK_TYPES = {"text", "image", "document", "tool_use", "tool_result"}


class AnthropicWire(WireServer):
    provider_type = "anthropic"
    request_id_header = "request-id"

    # -- validation -------------------------------------------------------------------------

    def validate(self, request: RecordedRequest) -> None:
        if request.method != "POST" or request.path != MESSAGES_PATH:
            raise WireRefusal(404, f"Not found: {request.method} {request.path}", "not_found_error")
        key = self.api_key_of(request)
        if not key or (self.api_key is not None and key != self.api_key):
            raise WireRefusal(401, "invalid x-api-key", "authentication_error")
        if not request.headers.get("anthropic-version"):
            raise WireRefusal(400, "anthropic-version: header is required")
        body = request.body
        if not isinstance(body, dict):
            raise WireRefusal(400, "The request body is not valid JSON.")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise WireRefusal(400, "model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or max_tokens < 1:
            raise WireRefusal(400, "max_tokens: Field required")
        temperature = body.get("temperature")
        if temperature is not None and not 0 <= temperature <= 1:
            raise WireRefusal(400, "temperature: Input should be less than or equal to 1")
        system = body.get("system")
        if system is not None and not isinstance(system, str | list):
            raise WireRefusal(400, "system: Input should be a valid string or list of blocks")
        tool_names = self._validate_tools(body)
        choice = body.get("tool_choice")
        if choice is not None:
            if choice.get("type") not in ("auto", "any", "tool", "none"):
                raise WireRefusal(400, "tool_choice.type: Input tag is not one of the expected")
            if choice["type"] == "tool" and choice.get("name") not in tool_names:
                raise WireRefusal(400, "tool_choice.name: no tool with that name")
        self._validate_messages(body.get("messages"))

    def _validate_tools(self, body: dict[str, Any]) -> set[str]:
        names: set[str] = set()
        for index, tool in enumerate(body.get("tools") or []):
            schema = tool.get("input_schema") if isinstance(tool, dict) else None
            if (
                not tool.get("name")
                or not isinstance(schema, dict)
                or schema.get("type") != "object"
            ):
                raise WireRefusal(400, f"tools.{index}.input_schema: an object schema is required")
            names.add(tool["name"])
        return names

    def _validate_messages(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise WireRefusal(400, "messages: at least one message is required")
        pending: set[str | None] = set()
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ("user", "assistant"):
                raise WireRefusal(
                    400,
                    f"messages.{index}.role: Input should be 'user' or 'assistant'"
                    + ("; use the top-level system parameter" if role == "system" else ""),
                )
            if index == 0 and role != "user":
                raise WireRefusal(400, 'messages: first message must use the "user" role')
            blocks = self._blocks(index, message.get("content"))
            results = {b.get("tool_use_id") for b in blocks if b.get("type") == "tool_result"}
            if pending and (role != "user" or not pending <= results):
                raise WireRefusal(
                    400,
                    f"messages.{index}: `tool_use` ids were found without `tool_result` blocks "
                    "immediately after",
                )
            if results - pending:
                raise WireRefusal(
                    400,
                    f"messages.{index}: unexpected `tool_use_id` found in `tool_result` blocks; "
                    "each must answer a `tool_use` block in the previous message",
                )
            if role == "assistant":
                pending = {b.get("id") for b in blocks if b.get("type") == "tool_use"}
            else:
                pending = set()
        if pending:
            raise WireRefusal(400, "the last `tool_use` blocks have no `tool_result`")

    def _blocks(self, index: int, content: Any) -> list[dict[str, Any]]:
        if isinstance(content, str):
            if not content:
                raise WireRefusal(400, f"messages.{index}: text content blocks must be non-empty")
            return [{"type": "text", "text": content}]
        if not isinstance(content, list) or not content:
            raise WireRefusal(400, f"messages.{index}.content: a string or a list of blocks")
        for block in content:
            kind = block.get("type") if isinstance(block, dict) else None
            if kind not in BLOCK_TYPES:
                raise WireRefusal(400, f"messages.{index}.content: unknown block type {kind!r}")
            if kind == "text" and not block.get("text"):
                raise WireRefusal(400, f"messages.{index}: text content blocks must be non-empty")
            if kind == "tool_use" and not (
                block.get("id") and block.get("name") and isinstance(block.get("input"), dict)
            ):
                raise WireRefusal(400, f"messages.{index}: tool_use needs id, name and input")
        return content

    def error_body(self, status: int, message: str, kind: str, request_id: str) -> Any:
        kind = ERROR_TYPES.get(status, kind if status < 500 else "api_error")
        return {
            "type": "error",
            "error": {"type": kind, "message": message},
            "request_id": request_id,
        }

    # -- answers ----------------------------------------------------------------------------

    def answer(self, exchange: Exchange, request: RecordedRequest, reply: Reply) -> None:
        if request.stream:
            exchange.open_stream(reply.headers)
            for name, data in self._events(request, reply):
                exchange.event(data, event=name)
            exchange.close_stream()
        else:
            exchange.send_json(200, self._message(request, reply), reply.headers)

    def answer_cut(self, exchange: Exchange, request: RecordedRequest, cut: CutStream) -> None:
        if not request.stream:
            exchange.send_partial(200, json.dumps(self._message(request, cut.reply)).encode())
            return
        exchange.open_stream()
        for name, data in self._events(request, cut.reply):
            exchange.event(data, event=name, cut_after=cut.after)
        exchange.drop()

    def malformed_event(self, exchange: Exchange) -> None:
        exchange.event('{"type": "message_start", "message": {"id": ', event="message_start")

    def answer_embeddings(
        self, exchange: Exchange, request: RecordedRequest, embeddings: Embeddings
    ) -> None:
        raise WireRefusal(404, "Anthropic has no embeddings API", "not_found_error")

    def _forced_tool(self, request: RecordedRequest) -> str | None:
        choice = request.body.get("tool_choice") or {}
        return choice.get("name") if choice.get("type") == "tool" else None

    def _content(self, request: RecordedRequest, reply: Reply) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        forced = self._forced_tool(request)
        if reply.output is not None and forced:
            return [
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:20]}",
                    "name": forced,
                    "input": reply.output,
                }
            ]
        text = json.dumps(reply.output) if reply.output is not None else reply.text
        if text:
            blocks.append({"type": "text", "text": text})
        for call, call_id in zip(reply.tool_calls, call_ids(reply, "toolu_"), strict=True):
            blocks.append(
                {"type": "tool_use", "id": call_id, "name": call.name, "input": call.arguments}
            )
        return blocks

    def _stop_reason(self, request: RecordedRequest, reply: Reply) -> str:
        if reply.output is not None and self._forced_tool(request):
            return "tool_use"
        return STOP_REASONS.get(reply.neutral_finish, reply.neutral_finish)

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "input_tokens": reply.input_tokens - reply.cached_tokens,
            "output_tokens": reply.output_tokens,
            "cache_creation_input_tokens": 0,
            "cache_read_input_tokens": reply.cached_tokens,
        }

    def _message(self, request: RecordedRequest, reply: Reply) -> dict[str, Any]:
        return {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": request.body["model"],
            "content": self._content(request, reply),
            "stop_reason": self._stop_reason(request, reply),
            "stop_sequence": None,
            "usage": self._usage(reply),
        }

    def _events(self, request: RecordedRequest, reply: Reply) -> list[tuple[str, str]]:
        message = self._message(request, reply)
        start = {
            **message,
            "content": [],
            "stop_reason": None,
            "usage": {**message["usage"], "output_tokens": 1},
        }
        events: list[tuple[str, Any]] = [("message_start", {"message": start})]
        for index, block in enumerate(message["content"]):
            if block["type"] == "text":
                events.append(
                    (
                        "content_block_start",
                        {"index": index, "content_block": {**block, "text": ""}},
                    )
                )
                events.append(("ping", {}))
                for piece in pieces(block["text"], reply.chunk_size):
                    delta = {"type": "text_delta", "text": piece}
                    events.append(("content_block_delta", {"index": index, "delta": delta}))
            else:
                events.append(
                    (
                        "content_block_start",
                        {"index": index, "content_block": {**block, "input": {}}},
                    )
                )
                for piece in split_in_two(json.dumps(block["input"])):
                    delta = {"type": "input_json_delta", "partial_json": piece}
                    events.append(("content_block_delta", {"index": index, "delta": delta}))
            events.append(("content_block_stop", {"index": index}))
        events.append(
            (
                "message_delta",
                {
                    "delta": {"stop_reason": message["stop_reason"], "stop_sequence": None},
                    "usage": {"output_tokens": reply.output_tokens},
                },
            )
        )
        events.append(("message_stop", {}))
        return [(name, json.dumps({"type": name, **data})) for name, data in events]
