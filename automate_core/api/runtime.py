"""Runtime endpoints: ingest events (API key or signed webhook), list and act on executions,
and dry-run rules."""

from __future__ import annotations

import json
from typing import Any

from django.db.models import QuerySet
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_view,
    inline_serializer,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.parsers import BaseParser
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api import parsers
from automate_core.api.permissions import request_tenant
from automate_core.api.redacted import RedactedPayloadsMixin
from automate_core.errors import InvalidInputError, NotFoundError
from automate_core.events.ingest import MAX_PAYLOAD_BYTES, ingestor
from automate_core.events.models import Event, WebhookSource
from automate_core.events.webhooks import WebhookSignatureInvalid, verify
from automate_core.executions.models import Execution, StepRun
from automate_core.governance.ratelimit import TenantRateThrottle
from automate_core.governance.secrets import SecretNotFoundError, get_secret
from automate_core.rules.matching import dry_run
from automate_core.workflows import engine

MAX_IDEMPOTENCY_KEY = Event._meta.get_field("idempotency_key").max_length or 200


class EventSerializer(RedactedPayloadsMixin, serializers.ModelSerializer):
    redacted_fields = ("payload",)

    class Meta:
        model = Event
        fields = [
            "id",
            "type",
            "payload",
            "source",
            "status",
            "occurs_at",
            "idempotency_key",
            "trace_id",
            "created_at",
        ]


class IngestSerializer(serializers.Serializer):
    type = serializers.CharField(max_length=200)
    payload = serializers.JSONField(default=dict)
    idempotency_key = serializers.CharField(
        max_length=MAX_IDEMPOTENCY_KEY, required=False, allow_blank=False
    )
    occurs_at = serializers.DateTimeField(required=False)


class AcceptedSerializer(serializers.Serializer):
    event_id = serializers.UUIDField()
    created = serializers.BooleanField()
    trace_id = serializers.CharField()


class EventViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Events of the caller's tenant; POST ingests one and answers 202 with its trace id."""

    serializer_class = EventSerializer
    required_resource = "events:write"

    def get_queryset(self) -> QuerySet[Event]:
        if getattr(self, "swagger_fake_view", False):
            return Event.objects.none()
        events = Event.objects.for_tenant(request_tenant(self.request))
        if event_type := self.request.query_params.get("type"):
            events = events.filter(type=event_type)
        return events

    @extend_schema(
        request=IngestSerializer,
        responses={
            202: AcceptedSerializer,
            409: OpenApiResponse(description="The idempotency key was used for another event."),
        },
        parameters=[
            OpenApiParameter(
                "Idempotency-Key",
                str,
                OpenApiParameter.HEADER,
                required=False,
                description="Same as the body's idempotency_key; a repeat returns the first "
                "event, a repeat with another type or payload is a 409.",
            )
        ],
    )
    def create(self, request: Request) -> Response:
        incoming = IngestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        ingested = ingestor.ingest(
            data["type"],
            data["payload"],
            tenant=request_tenant(request),
            source="api",
            idempotency_key=_idempotency_key(request, data.get("idempotency_key")),
            occurs_at=data.get("occurs_at"),
        )
        return _accepted(ingested.event, ingested.created)


def _idempotency_key(request: Request, in_body: str | None) -> str | None:
    header = request.headers.get("Idempotency-Key", "").strip() or None
    if header and len(header) > MAX_IDEMPOTENCY_KEY:
        raise InvalidInputError(
            f"Idempotency-Key is at most {MAX_IDEMPOTENCY_KEY} characters",
            details={"field": "Idempotency-Key"},
        )
    if header and in_body and header != in_body:
        raise InvalidInputError(
            "The Idempotency-Key header and the body's idempotency_key differ; send one",
            details={"field": "idempotency_key"},
        )
    return header or in_body


def _accepted(event: Event, created: bool) -> Response:
    body = {"event_id": str(event.pk), "created": created, "trace_id": event.trace_id}
    return Response(body, status=status.HTTP_202_ACCEPTED)


class RawBodyParser(BaseParser):
    """Keeps the exact bytes: the signature covers them, not a re-serialised JSON."""

    media_type = "*/*"

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        body: bytes = stream.read(MAX_PAYLOAD_BYTES + 1) if stream else b""
        return body


class WebhookThrottle(TenantRateThrottle):
    """100/min per tenant by default (``AUTOMATE["RATE_LIMITS"]["webhooks"]`` overrides)."""

    def get_identity(self, request: Request) -> str:
        source = (
            request.parser_context["kwargs"].get("source", "") if request.parser_context else ""
        )
        tenant_id = (
            WebhookSource.objects.filter(source=source).values_list("tenant_id", flat=True).first()
        )
        return f"tenant:{tenant_id}" if tenant_id else f"ip:{self.get_ident(request)}"


class WebhookView(APIView):
    authentication_classes: list[Any] = []
    permission_classes: list[Any] = []
    parser_classes = [RawBodyParser]
    throttle_classes = [WebhookThrottle]
    throttle_scope = "webhooks"
    rate_limit = "100/min"

    @extend_schema(
        request={"application/json": {"type": "object"}},
        responses={202: AcceptedSerializer},
        parameters=[
            OpenApiParameter("X-Automate-Timestamp", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Automate-Signature", str, OpenApiParameter.HEADER, required=True),
            OpenApiParameter("X-Automate-Event", str, OpenApiParameter.HEADER, required=False),
            OpenApiParameter("Idempotency-Key", str, OpenApiParameter.HEADER, required=False),
        ],
    )
    def post(self, request: Request, source: str) -> Response:
        hook = WebhookSource.objects.filter(source=source, is_enabled=True).first()
        if hook is None:
            raise NotFoundError(f"No webhook source {source!r}")
        body: bytes = request.data if isinstance(request.data, bytes) else b""
        if len(body) > MAX_PAYLOAD_BYTES:
            raise InvalidInputError(f"Webhook body exceeds {MAX_PAYLOAD_BYTES} bytes")
        try:
            secret = get_secret(hook.secret_ref, tenant=hook.tenant)
        except SecretNotFoundError:
            raise WebhookSignatureInvalid("This source has no signing secret configured") from None
        verify(
            secret,
            request.headers.get("X-Automate-Timestamp"),
            request.headers.get("X-Automate-Signature"),
            body,
        )
        try:
            payload = json.loads(body or b"{}")
        except ValueError:
            raise InvalidInputError("The webhook body is not valid JSON") from None
        if parsers.holds_nul(payload):
            raise InvalidInputError(parsers.MESSAGE)
        event_type = request.headers.get("X-Automate-Event") or (
            payload.get("type") if isinstance(payload, dict) else None
        )
        if not event_type:
            raise InvalidInputError("Name the event in X-Automate-Event or a top-level 'type'")
        ingested = ingestor.ingest(
            hook.event_type_prefix + str(event_type),
            payload,
            tenant=hook.tenant_id,
            source=f"webhook:{source}",
            idempotency_key=request.headers.get("Idempotency-Key"),
        )
        return _accepted(ingested.event, ingested.created)


class StepRunSerializer(RedactedPayloadsMixin, serializers.ModelSerializer):
    redacted_fields = ("output", "error")

    class Meta:
        model = StepRun
        fields = [
            "seq",
            "step_id",
            "status",
            "attempt",
            "output",
            "error",
            "idempotency_key",
            "duration_ms",
            "started_at",
            "finished_at",
        ]


class ExecutionSerializer(RedactedPayloadsMixin, serializers.ModelSerializer):
    redacted_fields = ("context", "result", "error", "waiting_for")

    class Meta:
        model = Execution
        fields = [
            "id", "workflow_name", "version", "status", "current_step", "context", "result",
            "error", "waiting_for", "wake_at", "trace_id", "event", "usage", "created_at",
            "started_at", "finished_at",
        ]  # fmt: skip


class ExecutionDetailSerializer(ExecutionSerializer):
    steps = StepRunSerializer(many=True, read_only=True)

    class Meta(ExecutionSerializer.Meta):
        fields = [*ExecutionSerializer.Meta.fields, "steps"]


class SignalSerializer(serializers.Serializer):
    name = serializers.CharField(max_length=200)
    payload = serializers.DictField(default=dict)


@extend_schema_view(
    list=extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=Execution.Status.values, required=False),
            OpenApiParameter("workflow", str, required=False, description="Workflow name."),
        ]
    )
)
class ExecutionViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, viewsets.GenericViewSet):
    """Runs of the caller's tenant, filterable by ``status`` and ``workflow``."""

    serializer_class = ExecutionSerializer
    required_resource = "executions:manage"

    def get_queryset(self) -> QuerySet[Execution]:
        if getattr(self, "swagger_fake_view", False):
            return Execution.objects.none()
        runs = Execution.objects.for_tenant(request_tenant(self.request))
        params = self.request.query_params
        if run_status := params.get("status"):
            if run_status not in Execution.Status.values:
                raise InvalidInputError(
                    f"Unknown status {run_status!r}; choose one of "
                    f"{', '.join(Execution.Status.values)}",
                    details={"field": "status", "choices": list(Execution.Status.values)},
                )
            runs = runs.filter(status=run_status)
        if workflow := params.get("workflow"):
            runs = runs.filter(workflow_name=workflow)
        return runs

    def get_serializer_class(self) -> type[serializers.BaseSerializer]:
        return ExecutionDetailSerializer if self.action == "retrieve" else ExecutionSerializer

    @extend_schema(request=SignalSerializer, responses=ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def signal(self, request: Request, pk: str | None = None) -> Response:
        run = self.get_object()
        incoming = SignalSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        resumed = engine.signal(
            incoming.validated_data["name"], incoming.validated_data["payload"], execution=run
        )
        if not resumed:
            raise InvalidInputError(
                f"This execution is not waiting for signal {incoming.validated_data['name']!r}",
                details={"status": run.status, "waiting_for": run.waiting_for},
            )
        return Response(self.get_serializer(resumed[0]).data)

    @extend_schema(request=None, responses=ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def retry(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(engine.retry(self.get_object())).data)

    @extend_schema(request=None, responses=ExecutionSerializer)
    @action(detail=True, methods=["post"])
    def cancel(self, request: Request, pk: str | None = None) -> Response:
        return Response(self.get_serializer(engine.cancel(self.get_object())).data)


class DryRunSerializer(serializers.Serializer):
    event_type = serializers.CharField(max_length=200)
    payload = serializers.JSONField(default=dict)


class RuleDryRunView(APIView):
    """Which automations an event would start, and why each trigger matches or not."""

    required_resource = "rules:read"

    @extend_schema(
        request=DryRunSerializer,
        responses=inline_serializer(
            "DryRunResult",
            {"results": serializers.ListField(child=serializers.DictField())},
        ),
    )
    def post(self, request: Request) -> Response:
        incoming = DryRunSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        verdicts = dry_run(
            request_tenant(request),
            incoming.validated_data["event_type"],
            incoming.validated_data["payload"],
        )
        return Response(
            {
                "results": [
                    {
                        "trigger": v.trigger.name,
                        "automation": v.trigger.automation.slug,
                        "version": v.trigger.version.version if v.trigger.version else "live",
                        "would_start": v.matched,
                        "reason": v.reason,
                    }
                    for v in verdicts
                ]
            }
        )
