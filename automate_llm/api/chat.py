"""``POST /api/v1/llm/chat``: one model call for the caller's tenant, answered as JSON or as a
Server-Sent Events stream.

The call goes through :mod:`automate_llm.services` like any other: the tenant's provider and
model, retries and fallback, budgets held before and charged after, one ``LLMRequest``. It is
attributed to the API key (its ``api_key`` budget), the ``end_user`` of the body (its
``end_user`` budget) and the request's trace id.

Guarantees:

* Nothing is sent to a provider when a budget refuses (402), no provider is configured (503)
  or the body is invalid (400); each is a NormalizedError.
* A stream's answer starts only once its first chunk has arrived: every error before that
  (retries and fallbacks exhausted, a rejected request) is a NormalizedError with its status,
  never a stream. After it, a break is an ``error`` event naming the ``LLMRequest`` and what the
  partial answer was charged.
* A stream the client abandons (it disconnects) is closed: the provider connection is dropped
  and the call recorded as ``llm_stream_cancelled`` with what arrived charged, so its budget
  hold is settled at once. Under ASGI the stream is an asynchronous iterator, so no worker
  thread is held between chunks.

API keys need the ``llm:chat`` scope.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from django.http import StreamingHttpResponse
from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.parsers import JSONParser
from automate_core.api.permissions import request_tenant
from automate_core.api.sse import (
    TEXT_PIECE,
    Events,
    EventStream,
    JSONWhateverAccepted,
    StreamEvents,
    encode_event,
)
from automate_core.api.usage import UsageSerializer
from automate_core.governance.ratelimit import APIKeyRateThrottle
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.tracing import current_trace_id, new_trace_id, trace
from automate_llm import services
from automate_llm.metering import CallContext
from automate_llm.services import ChatResponse, ChatStreamResponse, StructuredResponse

logger = logging.getLogger("automate.llm.api")

#: The resource an API key must be scoped for.
RESOURCE = "llm:chat"
#: Idempotency keys of API calls: unique per HTTP request, sent to the provider on every retry.
KEY_PREFIX = "api-chat:"
TOOL_NAME = r"^[A-Za-z0-9_-]{1,64}$"


# -- serializers ---------------------------------------------------------------------------------


class ToolCallSerializer(serializers.Serializer):
    id = serializers.CharField(max_length=200)
    name = serializers.CharField(max_length=64)
    arguments = serializers.DictField(default=dict, help_text="The arguments, parsed.")


class MessageSerializer(serializers.Serializer):
    role = serializers.ChoiceField(choices=["system", "user", "assistant", "tool"])
    content = serializers.CharField(
        allow_blank=True, allow_null=True, default="", trim_whitespace=False
    )
    tool_calls = ToolCallSerializer(
        many=True, required=False, help_text="On an assistant turn: the calls it asked for."
    )
    tool_call_id = serializers.CharField(
        max_length=200,
        required=False,
        allow_null=True,
        help_text="On a tool turn: the call it answers.",
    )
    name = serializers.CharField(max_length=64, required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        # OpenAI's own answers carry "content": null on a turn that only calls tools.
        return {**attrs, "content": attrs.get("content") or ""}


class ToolSerializer(serializers.Serializer):
    name = serializers.RegexField(TOOL_NAME)
    description = serializers.CharField(allow_blank=True, default="")
    parameters = serializers.DictField(
        required=False, help_text="A JSON schema of type object (default: no parameters)."
    )


class ChatRequestSerializer(serializers.Serializer):
    messages = MessageSerializer(many=True, allow_empty=False)
    model = serializers.CharField(
        max_length=200,
        required=False,
        help_text="A model config slug, or a model id (on provider, else the default provider). "
        "Default: the tenant's default model.",
    )
    provider = serializers.SlugField(
        max_length=100, required=False, help_text="A provider slug of the tenant."
    )
    max_tokens = serializers.IntegerField(min_value=1, required=False)
    temperature = serializers.FloatField(min_value=0, max_value=2, required=False)
    tools = ToolSerializer(many=True, required=False)
    tool_choice = serializers.CharField(
        max_length=64, default="auto", help_text="auto, none, required, or a tool's name."
    )
    json_schema = serializers.JSONField(
        required=False,
        help_text="Ask for an answer matching this JSON schema (validated, one repair "
        "attempt); the answer's value is in `value`. Not with stream or tools.",
    )
    stream = serializers.BooleanField(
        default=False, help_text="Answer as Server-Sent Events (text/event-stream)."
    )
    end_user = serializers.CharField(
        max_length=200,
        required=False,
        allow_blank=True,
        help_text="Your user the call is made for: its end_user budget applies.",
    )

    def validate_json_schema(self, value: Any) -> Any:
        if not isinstance(value, Mapping):
            raise serializers.ValidationError("Must be a JSON schema object.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        if "json_schema" in attrs:
            clashing = [name for name in ("stream", "tools") if attrs.get(name)]
            if clashing:
                raise serializers.ValidationError(
                    {name: "Cannot be combined with json_schema." for name in clashing}
                )
        return attrs


class ChatAnswerSerializer(serializers.Serializer):
    text = serializers.CharField()
    tool_calls = ToolCallSerializer(many=True)
    finish_reason = serializers.CharField(help_text="stop, length, tool_calls or content_filter.")
    usage = UsageSerializer()
    model = serializers.CharField(help_text="The model that answered (after any fallback).")
    provider = serializers.CharField(help_text="Slug of the provider that answered.")
    attempts = serializers.IntegerField()
    request_id = serializers.UUIDField(help_text="The LLMRequest that records the call.")
    trace_id = serializers.CharField()
    value = serializers.JSONField(required=False, help_text="With json_schema: the answer.")
    repaired = serializers.BooleanField(
        required=False, help_text="With json_schema: the first answer needed the repair call."
    )
    request_ids = serializers.ListField(
        child=serializers.UUIDField(),
        required=False,
        help_text="With json_schema: every LLMRequest (two after a repair).",
    )


# -- the view ------------------------------------------------------------------------------------


SSE_DESCRIPTION = """Ask the tenant's model for the next turn of a conversation, metered against
the budgets of the tenant, the API key and `end_user`. API keys need the `llm:chat` scope.

With `"stream": true` the answer is `text/event-stream`. Events, each `data` a JSON object:

* `text`: `{"text": "..."}`, a piece of the answer;
* `tool_call`: `{"id", "name", "arguments"}`, a whole tool call;
* `done` (last): the same object as the JSON answer (full text, usage with cost, request_id);
* `error` (last, when the provider stream breaks after it started): a NormalizedError whose
  `details` hold `request_id` and the `usage` the partial answer was charged.

Errors before the first event are NormalizedError JSON with their status."""


#: The events of a streamed answer, for the OpenAPI schema.
CHAT_EVENTS = StreamEvents(
    "LlmChat", {"text": TEXT_PIECE, "tool_call": ToolCallSerializer, "done": ChatAnswerSerializer}
)


class ChatView(APIView):
    """Ask the tenant's model for the next turn of a conversation (metered and budgeted)."""

    required_resource = RESOURCE
    throttle_classes = [APIKeyRateThrottle]
    throttle_scope = "llm.chat"
    #: Per API key (or session user); ``AUTOMATE["RATE_LIMITS"]["llm.chat"]`` overrides it.
    rate_limit = "120/min"
    parser_classes = [JSONParser]
    content_negotiation_class = JSONWhateverAccepted

    @extend_schema(
        operation_id="llm_chat",
        description=SSE_DESCRIPTION,
        request=ChatRequestSerializer,
        responses={
            **CHAT_EVENTS.responses(ChatAnswerSerializer),
            400: OpenApiResponse(description="Invalid body (`validation_error`, `invalid_input`)."),
            402: OpenApiResponse(description="A budget refused the call; nothing was sent."),
            422: OpenApiResponse(description="The answer never matched json_schema."),
            429: OpenApiResponse(description="Rate limited; see Retry-After."),
            502: OpenApiResponse(description="The provider failed (after retries/fallbacks)."),
            404: OpenApiResponse(
                description="`provider` names no active provider of the tenant "
                "(`llm_provider_not_found`; `details.choices` lists them)."
            ),
            503: OpenApiResponse(description="No LLM provider is configured for the tenant."),
        },
        examples=[
            OpenApiExample(
                "A question",
                value={
                    "messages": [{"role": "user", "content": "Summarise ticket 42."}],
                    "max_tokens": 200,
                    "end_user": "customer-17",
                },
                request_only=True,
            )
        ],
    )
    def post(self, request: Request) -> Response | StreamingHttpResponse:
        incoming = ChatRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        tenant = request_tenant(request)
        assert tenant is not None  # IsTenantMember let the request in
        trace_id = current_trace_id() or new_trace_id()
        context = CallContext(
            api_key_id=request.auth.pk if isinstance(request.auth, APIKey) else None,
            end_user=data.get("end_user", ""),
            trace_id=trace_id,
            idempotency_key=f"{KEY_PREFIX}{uuid.uuid4().hex}",
        )
        options = {
            name: data[name]
            for name in ("model", "provider", "max_tokens", "temperature")
            if name in data
        }
        if "json_schema" in data:
            structured = services.structured(
                tenant=tenant,
                messages=data["messages"],
                schema=data["json_schema"],
                context=context,
                **options,
            )
            return Response(answer(structured, trace_id))
        options |= {"tools": data.get("tools", []), "tool_choice": data["tool_choice"]}
        if data["stream"]:
            stream = services.stream_chat(
                tenant=tenant, messages=data["messages"], context=context, **options
            )
            events = _events(stream, tenant=tenant, context=context)
            return EventStream.started(events, request)
        response = services.chat(
            tenant=tenant, messages=data["messages"], context=context, **options
        )
        return Response(answer(response, trace_id))


def answer(response: ChatResponse, trace_id: str) -> dict[str, Any]:
    """The JSON answer (also the data of a stream's ``done`` event)."""
    result = response.result
    body: dict[str, Any] = {
        "text": result.text,
        "tool_calls": [call.model_dump(mode="json") for call in result.tool_calls],
        "finish_reason": result.finish_reason,
        "usage": response.usage.model_dump(),
        "model": response.model,
        "provider": response.provider,
        "attempts": response.attempts,
        "request_id": response.request_id,
        "trace_id": trace_id,
    }
    if isinstance(response, StructuredResponse):
        body |= {
            "value": response.value,
            "repaired": response.repaired,
            "request_ids": response.request_ids,
        }
    return dict(ChatAnswerSerializer(body).data)


# -- Server-Sent Events ----------------------------------------------------------------------------


def _events(stream: ChatStreamResponse, *, tenant: Tenant, context: CallContext) -> Events:
    """``text`` and ``tool_call`` events, then ``done``, or ``error`` when the stream breaks
    after its first chunk (a failure before it is the view's error answer). Each step runs
    under the request's trace id (steps may run in different threads). Closing the events
    closes the call: an unfinished one is recorded as cancelled, charged what arrived, and its
    budget hold settled."""
    trace_id = context.trace_id
    try:
        chunks = iter(stream)
        chunk = next(chunks, None)
        while chunk is not None:
            if chunk.text:
                yield encode_event("text", {"text": chunk.text})
            for call in chunk.tool_calls:
                yield encode_event("tool_call", call.model_dump(mode="json"))
            failure: dict[str, Any] | None = None
            with trace(trace_id):
                try:
                    chunk = next(chunks, None)
                except Exception as exc:  # recorded and charged by the stream already
                    failure = services.stream_failure(exc, tenant=tenant, context=context)
                    chunk = None
            if failure is not None:
                yield encode_event("error", failure)
                return
        assert stream.response is not None  # the stream ended normally
        yield encode_event("done", answer(stream.response, trace_id))
    finally:
        with trace(trace_id):
            stream.close()
