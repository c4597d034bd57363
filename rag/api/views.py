"""``/api/v1/rag/``: query an endpoint, check its health, push documents, sync sources.

Access: an API key of the tenant, scoped to ``rag:<endpoint>`` for the query and health of an
endpoint (the widget's keys), and to ``rag-sources:<source>`` to push documents or sync a
source (so a query key can never write). Endpoints and sources are found by slug within the
caller's tenant only: another tenant's slug is a 404, whatever the key.

``/answer`` asks the tenant's model through the LLM gateway, attributed to the API key and the
body's ``end_user`` (their budgets apply); its Server-Sent Events answer is an
:class:`automate_core.api.sse.EventStream`, like ``/api/v1/llm/chat``'s, so a client that goes
away closes the model stream and settles its budget hold.
"""

from __future__ import annotations

import base64
import binascii
import uuid
from typing import Any

from drf_spectacular.utils import OpenApiExample, OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.parsers import FormParser, JSONParser, MultiPartParser
from automate_core.api.permissions import request_tenant
from automate_core.api.sse import (
    TEXT_PIECE,
    Events,
    EventStream,
    JSONWhateverAccepted,
    StreamEvents,
    encode_event,
)
from automate_core.errors import InvalidInputError, NotFoundError
from automate_core.governance.audit import actor_for_request
from automate_core.governance.ratelimit import APIKeyRateThrottle
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.tracing import current_trace_id, new_trace_id, trace
from automate_llm import services as llm_services
from automate_llm.services import CallContext
from rag import services
from rag.api.serializers import (
    AnswerRequestSerializer,
    AnswerResponseSerializer,
    DocumentPushSerializer,
    DocumentSerializer,
    HealthSerializer,
    QueryRequestSerializer,
    QueryResponseSerializer,
    SourceSerializer,
    SyncAcceptedSerializer,
)
from rag.conf import rag_settings


def _tenant(request: Request) -> Tenant:
    tenant = request_tenant(request)
    assert tenant is not None  # IsTenantMember let the request in
    return tenant


class EndpointView(APIView):
    def required_resource(self, request: Request) -> str:
        return f"rag:{self.kwargs['endpoint']}"


class QueryView(EndpointView):
    """Hybrid search of the endpoint's live index version."""

    throttle_classes = [APIKeyRateThrottle]
    throttle_scope = "rag.query"

    @property
    def rate_limit(self) -> str:
        return str(rag_settings.QUERY_RATE_LIMIT)

    @extend_schema(
        operation_id="rag_query",
        request=QueryRequestSerializer,
        responses={
            200: QueryResponseSerializer,
            404: OpenApiResponse(description="No such endpoint in your tenant."),
            409: OpenApiResponse(description="The endpoint has no live index yet."),
            429: OpenApiResponse(description="Rate limited; see Retry-After."),
        },
    )
    def post(self, request: Request, endpoint: str) -> Response:
        incoming = QueryRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        found = services.get_endpoint(_tenant(request), endpoint)
        result = services.query(
            found, data["query"], top_k=data.get("top_k"), filters=data.get("filters")
        )
        return Response(result.to_json())


#: Idempotency keys of API answers: unique per HTTP request, sent to the provider on retries.
ANSWER_KEY_PREFIX = "api-rag-answer:"

ANSWER_DESCRIPTION = """Answer a question from the endpoint's passages with the tenant's model,
with citations. Same key scope (`rag:<endpoint>`), forced filters and rate limit as `/query`
(each answer counts as a query); the model call is metered against the budgets of the tenant,
the API key and `end_user`. The model and its options are the endpoint's
(`retrieval_config.answer`), else the tenant's default model.

The passages are numbered from 1 (`results`); the answer cites them as `[n]`, and `citations`
maps each marker to its chunk and document. When no passage matches, `outcome` is
`no_passages`, the answer says so and no model is called.

With `"stream": true` the answer is `text/event-stream`, each event's `data` a JSON object:

* `text`: `{"text": "..."}`, a piece of the answer;
* `done` (last): the same object as the JSON answer (citations, usage with cost, request_id);
* `error` (last, when the model's stream breaks after it started): a NormalizedError whose
  `details` hold `request_id` and the `usage` the partial answer was charged.

Errors before the first event (no index, no model, a budget) are NormalizedError JSON."""


#: The events of a streamed answer, for the OpenAPI schema.
ANSWER_EVENTS = StreamEvents("RagAnswer", {"text": TEXT_PIECE, "done": AnswerResponseSerializer})


class AnswerView(EndpointView):
    """Answer a question from the endpoint's passages, with citations (JSON or SSE)."""

    throttle_classes = [APIKeyRateThrottle]
    throttle_scope = "rag.query"
    content_negotiation_class = JSONWhateverAccepted

    @property
    def rate_limit(self) -> str:
        return str(rag_settings.QUERY_RATE_LIMIT)

    @extend_schema(
        operation_id="rag_answer",
        description=ANSWER_DESCRIPTION,
        request=AnswerRequestSerializer,
        responses={
            **ANSWER_EVENTS.responses(AnswerResponseSerializer),
            400: OpenApiResponse(description="Invalid body or filter."),
            402: OpenApiResponse(description="A budget refused the call; nothing was sent."),
            404: OpenApiResponse(description="No such endpoint in your tenant."),
            409: OpenApiResponse(description="The endpoint has no live index yet."),
            429: OpenApiResponse(description="Rate limited; see Retry-After."),
            502: OpenApiResponse(description="The model provider failed."),
            503: OpenApiResponse(description="No LLM provider is configured for the tenant."),
        },
        examples=[
            OpenApiExample(
                "A question",
                value={"query": "How long do refunds take?", "top_k": 4, "end_user": "c-17"},
                request_only=True,
            )
        ],
    )
    def post(self, request: Request, endpoint: str) -> Response | EventStream:
        incoming = AnswerRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        tenant = _tenant(request)
        found = services.get_endpoint(tenant, endpoint)
        context = CallContext(
            api_key_id=request.auth.pk if isinstance(request.auth, APIKey) else None,
            end_user=data.get("end_user", ""),
            trace_id=current_trace_id() or new_trace_id(),
            idempotency_key=f"{ANSWER_KEY_PREFIX}{uuid.uuid4().hex}",
        )
        arguments = {"top_k": data.get("top_k"), "filters": data.get("filters")}
        if not data["stream"]:
            result = services.answer(found, data["query"], context=context, **arguments)
            return Response(result.to_json())
        stream = services.stream_answer(found, data["query"], context=context, **arguments)
        return EventStream.started(_answer_events(stream, tenant=tenant, context=context), request)


def _answer_events(
    stream: services.AnswerStream, *, tenant: Tenant, context: CallContext
) -> Events:
    """``text`` events, then ``done`` with the whole answer, or ``error`` when the model's
    stream breaks after the first piece (a failure before it is the view's error answer).
    Each step runs under the request's trace id (steps may change threads)."""
    trace_id = stream.trace_id
    try:
        pieces = iter(stream)
        piece = next(pieces, None)
        while piece is not None:
            yield encode_event("text", {"text": piece})
            failure: dict[str, Any] | None = None
            with trace(trace_id):
                try:
                    piece = next(pieces, None)
                except Exception as exc:  # recorded and charged by the gateway already
                    failure = llm_services.stream_failure(exc, tenant=tenant, context=context)
                    piece = None
            if failure is not None:
                yield encode_event("error", failure)
                return
        assert stream.answer is not None  # the stream ended normally
        yield encode_event("done", stream.answer.to_json())
    finally:
        with trace(trace_id):
            stream.close()


class HealthView(EndpointView):
    @extend_schema(operation_id="rag_health", responses={200: HealthSerializer})
    def get(self, request: Request, endpoint: str) -> Response:
        found = services.get_endpoint(_tenant(request), endpoint)
        return Response(services.health_check(found))


class SourceView(APIView):
    def required_resource(self, request: Request) -> str:
        return f"rag-sources:{self.kwargs['source']}"


class SourceDetailView(SourceView):
    @extend_schema(operation_id="rag_source", responses={200: SourceSerializer})
    def get(self, request: Request, source: str) -> Response:
        return Response(SourceSerializer(services.get_source(_tenant(request), source)).data)


class SourceSyncView(SourceView):
    """Queue a sync of the source (fetch, parse, index); follow it on the source's detail."""

    @extend_schema(
        operation_id="rag_source_sync", request=None, responses={202: SyncAcceptedSerializer}
    )
    def post(self, request: Request, source: str) -> Response:
        found = services.get_source(_tenant(request), source)
        job = services.queue_sync(found, actor=actor_for_request(request))
        return Response(
            {"job_id": str(job.pk), "trace_id": current_trace_id() or new_trace_id()},
            status=status.HTTP_202_ACCEPTED,
        )


class DocumentPushView(SourceView):
    """Store a document in an ``api`` or ``upload`` source; it is indexed by an outbox job."""

    parser_classes = [JSONParser, MultiPartParser, FormParser]

    @extend_schema(
        operation_id="rag_document_push",
        request={
            "application/json": DocumentPushSerializer,
            "multipart/form-data": DocumentPushSerializer,
        },
        responses={202: DocumentSerializer},
    )
    def post(self, request: Request, source: str) -> Response:
        incoming = DocumentPushSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        found = services.get_source(_tenant(request), source)
        content_type = data.get("content_type") or ""
        if "file" in data:
            upload = data["file"]
            raw = upload.read()
            external_id = data.get("external_id") or upload.name
            content_type = content_type or upload.content_type or ""
        elif "content_base64" in data:
            try:
                raw = base64.b64decode(data["content_base64"], validate=True)
            except (binascii.Error, ValueError) as exc:
                raise InvalidInputError(
                    "content_base64 is not valid base64", details={"field": "content_base64"}
                ) from exc
            external_id = data["external_id"]
        else:
            raw = data["content"].encode("utf-8")
            external_id = data["external_id"]
        document, outcome = services.push_document(
            found,
            external_id=external_id,
            data=raw,
            content_type=content_type,
            title=data.get("title") or "",
            metadata=data.get("metadata") or {},
        )
        body: dict[str, Any] = {
            "id": str(document.pk),
            "external_id": document.external_id,
            "title": document.title,
            "status": document.status,
            "error": document.error,
            "outcome": outcome,
        }
        return Response(body, status=status.HTTP_202_ACCEPTED)


class DocumentDeleteView(SourceView):
    @extend_schema(operation_id="rag_document_delete", responses={204: None})
    def delete(self, request: Request, source: str, external_id: str) -> Response:
        found = services.get_source(_tenant(request), source)
        if not services.delete_document(found, external_id):
            raise NotFoundError("No document with this external_id in the source.")
        return Response(status=status.HTTP_204_NO_CONTENT)
