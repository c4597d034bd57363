"""A local server that speaks OpenAI's Chat Completions and Embeddings APIs.

Shapes follow the API reference: ``chat.completion`` objects, ``chat.completion.chunk`` SSE
events ended by ``data: [DONE]`` (with a last ``usage`` chunk when
``stream_options.include_usage`` is set), tool calls as ``function`` calls with JSON-string
arguments (streamed as an id/name delta then argument pieces), the request id in
``x-request-id`` and errors as ``{"error": {"message", "type", "param", "code"}}``.
"""

from __future__ import annotations

import json
import time
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
    vector_for,
)

CHAT_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
ROLES = {"system", "developer", "user", "assistant", "tool"}
ERROR_TYPES = {401: "invalid_api_key", 404: "not_found_error", 429: "rate_limit_exceeded"}


class OpenAIWire(WireServer):
    provider_type = "openai"
    request_id_header = "x-request-id"

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def is_embeddings(self, request: RecordedRequest) -> bool:
        return request.path == EMBEDDINGS_PATH

    # -- validation -------------------------------------------------------------------------

    def validate(self, request: RecordedRequest) -> None:
        if request.method != "POST" or request.path not in (CHAT_PATH, EMBEDDINGS_PATH):
            raise WireRefusal(404, f"Unknown request URL: {request.method} {request.path}.")
        key = request.headers.get("authorization", "").removeprefix("Bearer ")
        if (
            not request.headers.get("authorization", "").startswith("Bearer ")
            or not key
            or (self.api_key is not None and key != self.api_key)
        ):
            raise WireRefusal(401, "Incorrect API key provided.", "invalid_api_key")
        body = request.body
        if not isinstance(body, dict):
            raise WireRefusal(400, "We could not parse the JSON body of your request.")
        if not isinstance(body.get("model"), str) or not body["model"]:
            raise WireRefusal(400, "you must provide a model parameter")
        if request.path == EMBEDDINGS_PATH:
            if not isinstance(body.get("input"), str | list) or not body["input"]:
                raise WireRefusal(400, "'input' is a required property")
            return
        self._validate_messages(body.get("messages"))
        if "stream_options" in body and body.get("stream") is not True:
            raise WireRefusal(
                400, "The 'stream_options' parameter is only allowed when 'stream' is enabled."
            )
        for tool in body.get("tools") or []:
            function = tool.get("function") if isinstance(tool, dict) else None
            if (
                tool.get("type") != "function"
                or not isinstance(function, dict)
                or not function.get("name")
            ):
                raise WireRefusal(
                    400, "Invalid 'tools': each tool is {type: function, function: {name, ...}}."
                )
        response_format = body.get("response_format")
        if response_format is not None:
            kind = response_format.get("type")
            if kind not in ("text", "json_object", "json_schema"):
                raise WireRefusal(400, f"Invalid 'response_format.type': {kind!r}.")
            if kind == "json_schema":
                spec = response_format.get("json_schema") or {}
                if not spec.get("name") or not isinstance(spec.get("schema"), dict):
                    raise WireRefusal(
                        400, "'response_format.json_schema' needs a name and a schema."
                    )

    def _validate_messages(self, messages: Any) -> None:
        if not isinstance(messages, list) or not messages:
            raise WireRefusal(400, "'messages' must be a non-empty array.")
        open_calls: set[str] = set()
        for index, message in enumerate(messages):
            role = message.get("role") if isinstance(message, dict) else None
            if role not in ROLES:
                raise WireRefusal(400, f"Invalid value for 'messages[{index}].role': {role!r}.")
            if role == "assistant":
                for call in message.get("tool_calls") or []:
                    function = call.get("function") or {}
                    if call.get("type") != "function" or not isinstance(
                        function.get("arguments"), str
                    ):
                        raise WireRefusal(400, f"Invalid 'messages[{index}].tool_calls'.")
                    open_calls.add(call.get("id"))
            elif role == "tool":
                if message.get("tool_call_id") not in open_calls:
                    raise WireRefusal(
                        400,
                        "Messages with role 'tool' must be a response to a preceeding message "
                        "with 'tool_calls'.",
                    )
            elif "content" not in message:
                raise WireRefusal(400, f"Missing required parameter: 'messages[{index}].content'.")

    def error_body(self, status: int, message: str, kind: str, request_id: str) -> Any:
        kind = ERROR_TYPES.get(status, kind if status < 500 else "server_error")
        return {"error": {"message": message, "type": kind, "param": None, "code": kind}}

    # -- answers ----------------------------------------------------------------------------

    def answer(self, exchange: Exchange, request: RecordedRequest, reply: Reply) -> None:
        if request.stream:
            exchange.open_stream(reply.headers)
            for event in self._events(request, reply):
                exchange.event(event)
            exchange.close_stream()
        else:
            exchange.send_json(200, self._completion(request, reply), reply.headers)

    def answer_cut(self, exchange: Exchange, request: RecordedRequest, cut: CutStream) -> None:
        if not request.stream:
            exchange.send_partial(200, json.dumps(self._completion(request, cut.reply)).encode())
            return
        exchange.open_stream()
        for event in self._events(request, cut.reply):
            exchange.event(event, cut_after=cut.after)
        exchange.drop()

    def malformed_event(self, exchange: Exchange) -> None:
        exchange.event('{"id": "chatcmpl-broken", "choices": [{"delta": ')

    def answer_embeddings(
        self, exchange: Exchange, request: RecordedRequest, embeddings: Embeddings
    ) -> None:
        texts = request.body["input"]
        texts = [texts] if isinstance(texts, str) else texts
        size = request.body.get("dimensions") or embeddings.dimensions  # as OpenAI shortens
        vectors = embeddings.vectors or tuple(tuple(vector_for(str(text), size)) for text in texts)
        tokens = embeddings.input_tokens
        if tokens is None:
            tokens = sum(len(str(text).split()) for text in texts)
        exchange.send_json(
            200,
            {
                "object": "list",
                "data": [
                    {"object": "embedding", "index": i, "embedding": list(vector)}
                    for i, vector in enumerate(vectors)
                ],
                "model": request.body["model"],
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
            },
        )

    def _usage(self, reply: Reply) -> dict[str, Any]:
        return {
            "prompt_tokens": reply.input_tokens,
            "completion_tokens": reply.output_tokens,
            "total_tokens": reply.input_tokens + reply.output_tokens,
            "prompt_tokens_details": {"cached_tokens": reply.cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        }

    def _content(self, reply: Reply) -> str | None:
        if reply.output is not None:
            return json.dumps(reply.output)
        return reply.text or None

    def _completion(self, request: RecordedRequest, reply: Reply) -> dict[str, Any]:
        message: dict[str, Any] = {
            "role": "assistant",
            "content": self._content(reply),
            "refusal": None,
        }
        if reply.tool_calls:
            message["tool_calls"] = [
                {
                    "id": call_id,
                    "type": "function",
                    "function": {"name": call.name, "arguments": json.dumps(call.arguments)},
                }
                for call, call_id in zip(reply.tool_calls, call_ids(reply), strict=True)
            ]
        return {
            "id": f"chatcmpl-{uuid.uuid4().hex[:20]}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": request.body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": reply.neutral_finish,
                }
            ],
            "usage": self._usage(reply),
            "system_fingerprint": "fp_wire",
        }

    def _events(self, request: RecordedRequest, reply: Reply) -> list[str]:
        body = request.body
        include_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        base = {
            "id": f"chatcmpl-{uuid.uuid4().hex[:20]}",
            "object": "chat.completion.chunk",
            "created": int(time.time()),
            "model": body["model"],
            "system_fingerprint": "fp_wire",
        }

        def chunk(delta: dict[str, Any], finish: str | None = None) -> str:
            data: dict[str, Any] = {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
                ],
            }
            if include_usage:
                data["usage"] = None
            return json.dumps(data)

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        content = self._content(reply)
        if content:
            events += [chunk({"content": piece}) for piece in pieces(content, reply.chunk_size)]
        for index, (call, call_id) in enumerate(
            zip(reply.tool_calls, call_ids(reply), strict=True)
        ):
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            {
                                "index": index,
                                "id": call_id,
                                "type": "function",
                                "function": {"name": call.name, "arguments": ""},
                            }
                        ]
                    }
                )
            )
            for piece in split_in_two(json.dumps(call.arguments)):
                events.append(
                    chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
                )
        events.append(chunk({}, reply.neutral_finish))
        if include_usage:
            events.append(json.dumps({**base, "choices": [], "usage": self._usage(reply)}))
        events.append("[DONE]")
        return events
