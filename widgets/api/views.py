"""The widget's endpoints, ``/widgets/v1/<pk>/…``, and ``POST /api/v1/widgets/<pk>/tokens``.

Every ``/widgets/v1/<pk>/`` request is checked in this order before its handler runs: the embed
(active), the ``Origin`` header against its allowed origins (else 403 ``origin_not_allowed``,
with no CORS headers, so the page cannot read any answer), and the per-address rate limit. A
request of the admin's live preview carries a preview token (``X-Automate-Preview``) instead,
and is answered only from the admin origin that token names.
CORS headers go only to allowed origins; preflights (``OPTIONS``) are answered here. After the
conversation is started, requests carry its token (``Authorization: Bearer``), bound to the
embed and the origin. Errors are NormalizedError JSON, whatever ``Accept`` says.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.permissions import AllowAny
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.throttling import BaseThrottle
from rest_framework.views import APIView

from automate_core.api.permissions import request_tenant
from automate_core.api.sse import (
    TEXT_PIECE,
    Events,
    EventStream,
    JSONWhateverAccepted,
    StreamEvents,
    encode_event,
)
from automate_core.errors import InvalidInputError
from automate_core.governance import audit
from automate_core.tenancy.models import APIKey
from automate_core.tracing import trace
from automate_llm import services as llm_services
from widgets import admission, services
from widgets.api.serializers import (
    WidgetConfigSerializer,
    WidgetConversationSerializer,
    WidgetConversationStartSerializer,
    WidgetFeedbackSerializer,
    WidgetHistorySerializer,
    WidgetMessageSerializer,
    WidgetQuestionSerializer,
    WidgetTokenRequestSerializer,
    WidgetTokenSerializer,
)
from widgets.conf import widget_settings
from widgets.errors import ConversationNotFound
from widgets.models import ChatEmbed, WidgetConversation, WidgetMessage
from widgets.targets import chart_image, target_for

ALLOWED_METHODS = "GET, POST, OPTIONS"
ALLOWED_HEADERS = "Authorization, Content-Type"
EXPOSED_HEADERS = "Retry-After, X-Trace-Id"
PREVIEW_HEADER = "X-Automate-Preview"


def _page_origin(request: Request) -> str | None:
    """The calling page's origin: the ``Origin`` header, or this server's own origin for a
    same-origin request a browser sent without one (a GET; ``Sec-Fetch-Site`` says so)."""
    origin = request.headers.get("Origin")
    if origin is None and request.headers.get("Sec-Fetch-Site") == "same-origin":
        return f"{request.scheme}://{request.get_host()}"
    return origin


def _bearer(request: Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class WidgetView(APIView):
    """Base of the public widget endpoints: embed, origin, address rate limit, CORS."""

    authentication_classes: list[Any] = []
    permission_classes = [AllowAny]
    throttle_classes: list[Any] = []
    content_negotiation_class = JSONWhateverAccepted

    embed: ChatEmbed
    origin: str | None = None

    def initial(self, request: Request, *args: Any, **kwargs: Any) -> None:
        super().initial(request, *args, **kwargs)
        self.embed = services.get_embed(kwargs["pk"])
        preview = request.headers.get(PREVIEW_HEADER)
        if preview is not None:
            self.origin = admission.check_preview_origin(self.embed, preview, _page_origin(request))
        else:
            self.origin = admission.check_origin(self.embed, request.headers.get("Origin"))
        if request.method != "OPTIONS":
            address = BaseThrottle().get_ident(request)
            admission.check_address_rate(self.embed, address or "unknown")

    @extend_schema(exclude=True)
    def options(self, request: Any, *args: Any, **kwargs: Any) -> Response:
        response = Response(status=status.HTTP_204_NO_CONTENT)
        response["Access-Control-Allow-Methods"] = ALLOWED_METHODS
        response["Access-Control-Allow-Headers"] = ALLOWED_HEADERS
        response["Access-Control-Max-Age"] = str(widget_settings.PREFLIGHT_MAX_AGE)
        return response

    def finalize_response(self, request: Request, response: Any, *args: Any, **kwargs: Any) -> Any:
        response = super().finalize_response(request, response, *args, **kwargs)
        response["Vary"] = "Origin"
        if self.origin is not None:
            response["Access-Control-Allow-Origin"] = request.headers.get("Origin", self.origin)
            response["Access-Control-Expose-Headers"] = EXPOSED_HEADERS
        return response

    def conversation(self, request: Request, conversation_id: Any) -> WidgetConversation:
        assert self.origin is not None
        found = services.get_conversation(self.embed, _bearer(request), origin=self.origin)
        if found.pk != conversation_id:
            raise ConversationNotFound()
        return found


class ConfigView(WidgetView):
    """What the widget needs to render: the theme, the identity mode and the target's kind."""

    @extend_schema(operation_id="widget_config", responses={200: WidgetConfigSerializer})
    def get(self, request: Request, pk: str) -> Response:
        return Response(
            {
                "embed": self.embed.publishable_key,
                "name": self.embed.name,
                "identity_mode": self.embed.identity_mode,
                "target": target_for(self.embed).kind,
                "theme": self.embed.theme,
            }
        )


class ConversationsView(WidgetView):
    """Start a conversation (``{"end_user_token": …}`` for a signed visitor) and get its token."""

    @extend_schema(
        operation_id="widget_conversation_start",
        request=WidgetConversationStartSerializer,
        responses={201: WidgetConversationSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        assert self.origin is not None
        data = request.data if isinstance(request.data, dict) else {}
        token = data.get("end_user_token")
        if token is not None and not isinstance(token, str):
            raise InvalidInputError("end_user_token is a string")
        started = services.start_conversation(self.embed, origin=self.origin, end_user_token=token)
        return Response(
            {
                "conversation": str(started.conversation.pk),
                "token": started.token,
                "expires_in": started.expires_in,
                "signed": started.conversation.signed,
            },
            status=status.HTTP_201_CREATED,
        )


def _message_json(message: WidgetMessage) -> dict[str, Any]:
    table, chart = _table_and_chart(message.data)
    return {
        "id": str(message.pk),
        "role": message.role,
        "text": message.text,
        "status": message.status,
        "citations": message.citations,
        "table": table,
        "chart": chart,
        "rating": message.rating,
        "created_at": message.created_at.isoformat(),
    }


def _table_and_chart(data: dict[str, Any]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """A data-chat answer's ``table`` event (or None) and ``chart`` event (its image)."""
    if not data:
        return None, None
    table = {key: data[key] for key in ("columns", "rows", "row_count", "truncated")}
    spec = data.get("chart")
    return table, ({"image": chart_image(spec)} if spec else None)


#: The events of an answer (see :class:`MessagesView`), for the OpenAPI schema.
ANSWER_EVENTS = StreamEvents(
    "WidgetAsk",
    {
        "text": TEXT_PIECE,
        "citations": {
            "type": "object",
            "properties": {"citations": {"type": "array", "items": {"type": "object"}}},
            "required": ["citations"],
        },
        "table": {
            "type": "object",
            "properties": {
                "columns": {"type": "array", "items": {"type": "string"}},
                "rows": {"type": "array", "items": {"type": "array", "items": {}}},
                "row_count": {"type": "integer"},
                "truncated": {"type": "boolean"},
            },
            "required": ["columns", "rows", "row_count", "truncated"],
        },
        "chart": {
            "type": "object",
            "properties": {"image": {"type": "string", "description": "A data: URL (SVG)."}},
            "required": ["image"],
        },
        "done": {
            "type": "object",
            "properties": {
                "message": {"type": "string", "format": "uuid"},
                "outcome": {"type": "string"},
                "token": {"type": "string", "description": "The renewed conversation token."},
                "expires_in": {"type": "integer"},
                "trace_id": {"type": "string"},
            },
            "required": ["message", "outcome", "token", "expires_in", "trace_id"],
        },
    },
)


class MessagesView(WidgetView):
    """``GET``: the conversation's history. ``POST {"text": …}``: ask; the answer streams as
    Server-Sent Events: ``text`` pieces, then ``citations``, for a data-chat answer ``table``
    (columns, rows) and ``chart`` (``image``: a ``data:`` URL of the server-rendered SVG), and
    ``done`` (the stored answer's id and a renewed conversation token), or ``error`` (a
    NormalizedError) when the model's stream breaks. Refusals before the answer starts are
    NormalizedError JSON."""

    @extend_schema(operation_id="widget_history", responses={200: WidgetHistorySerializer})
    def get(self, request: Request, pk: str, conversation: Any) -> Response:
        found = self.conversation(request, conversation)
        return Response({"messages": [_message_json(m) for m in services.history(found)]})

    @extend_schema(
        operation_id="widget_ask",
        request=WidgetQuestionSerializer,
        responses={
            **ANSWER_EVENTS.responses(),
            402: OpenApiResponse(description="The end user's quota is spent."),
            429: OpenApiResponse(description="A rate limit or the daily cap; see Retry-After."),
        },
    )
    def post(self, request: Request, pk: str, conversation: Any) -> EventStream:
        found = self.conversation(request, conversation)
        data = request.data if isinstance(request.data, dict) else {}
        question = services.ask(found, data.get("text"))
        return EventStream.for_request(_answer_events(question, found), request)


def _answer_events(question: services.Question, conversation: WidgetConversation) -> Events:
    """The answer's events; what arrived is stored as the answer whatever ends the stream (a
    stop or a lost connection stores it as ``stopped``)."""
    stream, trace_id = question.stream, question.stream.trace_id
    received: list[str] = []
    stored = False
    try:
        piece = question.head
        while piece is not None:
            received.append(piece)
            services.release_connection()
            yield encode_event("text", {"text": piece})
            failure: dict[str, Any] | None = None
            with trace(trace_id):
                try:
                    piece = next(question.pieces, None)
                except Exception as exc:  # recorded and charged by the gateway already
                    failure = llm_services.stream_failure(
                        exc, tenant=conversation.embed.tenant, context=question.context
                    )
                    piece = None
            if failure is not None:
                with trace(trace_id):
                    services.finish_answer(
                        question,
                        "".join(received),
                        status=WidgetMessage.Status.FAILED,
                        error={"code": failure["code"]},
                    )
                stored = True
                yield encode_event("error", failure)
                return
        with trace(trace_id):
            reply = stream.reply()
            answer = services.finish_answer(question, "".join(received), reply=reply)
            token, expires_in = services.renew_token(conversation)
        stored = True
        yield encode_event("citations", {"citations": reply.citations})
        table, chart = _table_and_chart(reply.data)
        if table is not None:
            yield encode_event("table", table)
        if chart is not None:
            yield encode_event("chart", chart)
        yield encode_event(
            "done",
            {
                "message": str(answer.pk),
                "outcome": reply.outcome,
                "token": token,
                "expires_in": expires_in,
                "trace_id": trace_id,
            },
        )
    finally:
        with trace(trace_id):
            stream.close()
            if not stored:
                services.finish_answer(
                    question, "".join(received), status=WidgetMessage.Status.STOPPED
                )


class FeedbackView(WidgetView):
    """``{"rating": "up"|"down", "comment": …}`` on an answer of the caller's conversation."""

    @extend_schema(
        operation_id="widget_feedback",
        request=WidgetFeedbackSerializer,
        responses={200: WidgetMessageSerializer},
    )
    def post(self, request: Request, pk: str, message: Any) -> Response:
        assert self.origin is not None
        found = services.get_conversation(self.embed, _bearer(request), origin=self.origin)
        data = request.data if isinstance(request.data, dict) else {}
        rated = services.rate_answer(
            found, message, rating=data.get("rating"), comment=data.get("comment", "")
        )
        return Response(_message_json(rated))


class TokensView(APIView):
    """Mint an end-user token for a signed-in visitor of the host (server to server).

    Needs an API key of the embed's tenant that allows ``widgets:mint``. Body:
    ``{"end_user_id": "c-17", "claims": {...}, "ttl_seconds": 900}`` (ttl at most an hour).
    """

    required_resource = "widgets:mint"

    @extend_schema(
        operation_id="widget_token_mint",
        request=WidgetTokenRequestSerializer,
        responses={201: WidgetTokenSerializer},
    )
    def post(self, request: Request, pk: str) -> Response:
        embed = services.get_tenant_embed(request_tenant(request), pk)
        data = request.data if isinstance(request.data, dict) else {}
        claims = data.get("claims") or {}
        if not isinstance(claims, dict):
            raise InvalidInputError("claims is a JSON object", details={"field": "claims"})
        ttl = data.get("ttl_seconds")
        if ttl is not None and (not isinstance(ttl, int) or isinstance(ttl, bool)):
            raise InvalidInputError("ttl_seconds is an integer", details={"field": "ttl_seconds"})
        end_user_id: Any = data.get("end_user_id")
        token = services.mint(embed, end_user_id, claims, ttl)
        audit.record(
            "widgets.token.mint",
            actor=audit.actor_for_request(request),
            tenant=embed.tenant,
            target=f"widgets.embed:{embed.pk}",
            data={"end_user": end_user_id, "api_key": _key_prefix(request)},
        )
        return Response({"token": token}, status=status.HTTP_201_CREATED)


def _key_prefix(request: Request) -> str:
    return request.auth.prefix if isinstance(request.auth, APIKey) else ""
