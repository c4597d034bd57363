"""``/api/v1/rag/``: query an endpoint, check its health, push documents, sync sources.

Access: an API key of the tenant, scoped to ``rag:<endpoint>`` for the query and health of an
endpoint (the widget's keys), and to ``rag-sources:<source>`` to push documents or sync a
source (so a query key can never write). Endpoints and sources are found by slug within the
caller's tenant only: another tenant's slug is a 404, whatever the key.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import status
from rest_framework.parsers import FormParser, JSONParser, MultiPartParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.permissions import request_tenant
from automate_core.api.tracing import current_trace_id, new_trace_id
from automate_core.errors import InvalidInputError, NotFoundError
from automate_core.governance.audit import actor_for_request
from automate_core.governance.ratelimit import APIKeyRateThrottle
from automate_core.tenancy.models import Tenant
from rag import services
from rag.api.serializers import (
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
            content_type = content_type or "text/plain"
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
