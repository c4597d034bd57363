"""``/api/v1/datachat/``: ask a dataset in plain language, run SQL on it, curate its examples,
read sessions and their messages, fetch chart images and result tables as CSV.

Access: an API key of the tenant scoped to ``datachat:<dataset>`` asks and reads examples;
running given SQL also needs ``datachat:sql``; changing examples needs
``datachat-examples:<dataset>`` (examples go into every user's prompt). Datasets, sessions and
examples are found within the caller's tenant only, and an API key sees only the sessions it
opened: anything else is a 404. Asking calls the tenant's model through the LLM gateway,
attributed to the key and the body's ``end_user`` (their budgets apply).
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

from django.http import HttpResponse, StreamingHttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework import generics, status
from rest_framework.exceptions import PermissionDenied
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.errors import error_body
from automate_core.api.permissions import request_tenant
from automate_core.api.sse import (
    Events,
    EventStream,
    JSONWhateverAccepted,
    StreamEvents,
    encode_event,
)
from automate_core.errors import AutomateError, NotFoundError
from automate_core.governance.audit import actor_for_request
from automate_core.governance.ratelimit import APIKeyRateThrottle
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.tracing import current_trace_id, new_trace_id, trace
from automate_datachat import charts, examples, export, services, sessions
from automate_datachat.api.serializers import (
    AskRequestSerializer,
    DataChatAnswerSerializer,
    DataChatMessageSerializer,
    DataChatSessionSerializer,
    ExampleSerializer,
    ResultSerializer,
    SQLRequestSerializer,
)
from automate_datachat.asking import Answer, Event
from automate_datachat.conf import datachat_settings
from automate_datachat.models import DataChatMessage, DataChatSession, DatasetExample
from automate_llm.services import CallContext

#: Idempotency keys of API questions: unique per HTTP request, sent to the provider on retries.
ASK_KEY_PREFIX = "api-datachat-ask:"
SQL_SCOPE = "datachat:sql"


def _tenant(request: Request) -> Tenant:
    tenant = request_tenant(request)
    assert tenant is not None  # IsTenantMember let the request in
    return tenant


def _key(request: Request) -> APIKey | None:
    return request.auth if isinstance(request.auth, APIKey) else None


def _require(request: Request, resource: str) -> None:
    key = _key(request)
    if key is not None and not key.allows(resource):
        raise PermissionDenied(f"This API key is not scoped for {resource}.")


class DatasetView(APIView):
    def required_resource(self, request: Request) -> str:
        return f"datachat:{self.kwargs['dataset']}"


ASK_DESCRIPTION = """Ask a question about the dataset in plain language. The tenant's model
writes SQL (with the dataset's schema, similar curated examples and the session's recent turns
in its prompt); the SQL runs through the guard, read-only, on the tenant's rows only; a refused
SQL is repaired once with the error. The answer carries the SQL that ran, the rows, a Vega-Lite
chart spec (rows inline) and what the model calls cost. Each question is stored in its session
(`session` continues one; without it a new one is started and returned).

With `"stream": true` (or `Accept: text/event-stream`) the answer is Server-Sent Events, each
`data` a JSON object: `sql` (`{"sql"}`, the model's SQL, again after a repair), `rows` (the
result), `chart` (the spec, when there is one), `answer` (the whole JSON answer), `done`
(`{"session", "message"}`), or `error` (last; a NormalizedError) when the SQL failed twice.
Errors before the first event (no dataset, no model, a budget) are NormalizedError JSON."""


_NULLABLE_UUID = {"type": "string", "format": "uuid", "nullable": True}

#: The events of a streamed answer, for the OpenAPI schema.
ASK_EVENTS = StreamEvents(
    "DataChatAsk",
    {
        "sql": {"type": "object", "properties": {"sql": {"type": "string"}}, "required": ["sql"]},
        "rows": ResultSerializer,
        "chart": {"type": "object", "description": "A Vega-Lite spec, rows inline."},
        "answer": DataChatAnswerSerializer,
        "done": {
            "type": "object",
            "properties": {"session": _NULLABLE_UUID, "message": _NULLABLE_UUID},
            "required": ["session", "message"],
        },
    },
)


class AskView(DatasetView):
    """Answer a question with guarded SQL, its rows and a chart (JSON or SSE)."""

    throttle_classes = [APIKeyRateThrottle]
    throttle_scope = "datachat.ask"
    content_negotiation_class = JSONWhateverAccepted

    @property
    def rate_limit(self) -> str:
        return str(datachat_settings.ASK_RATE_LIMIT)

    @extend_schema(
        operation_id="datachat_ask",
        description=ASK_DESCRIPTION,
        request=AskRequestSerializer,
        responses={
            **ASK_EVENTS.responses(DataChatAnswerSerializer),
            400: OpenApiResponse(description="Invalid body, or the SQL was refused twice."),
            402: OpenApiResponse(description="A budget refused the call; nothing was sent."),
            404: OpenApiResponse(description="No such dataset or session in your tenant."),
            422: OpenApiResponse(description="The database refused the SQL twice."),
            429: OpenApiResponse(description="Rate limited; see Retry-After."),
            503: OpenApiResponse(description="No LLM provider is configured for the tenant."),
        },
    )
    def post(self, request: Request, dataset: str) -> Response | EventStream:
        incoming = AskRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        data = incoming.validated_data
        tenant = _tenant(request)
        key = _key(request)
        definition = services.dataset_for(tenant, dataset)
        session = sessions.open_session(
            tenant=tenant,
            dataset=definition.slug,
            session=data.get("session"),
            user=request.user,
            end_user=data.get("end_user", ""),
            api_key_id=key.pk if key is not None else None,
        )
        context = CallContext(
            api_key_id=key.pk if key is not None else None,
            end_user=data.get("end_user", "") or session.end_user,
            trace_id=current_trace_id() or new_trace_id(),
            idempotency_key=f"{ASK_KEY_PREFIX}{uuid.uuid4().hex}",
        )
        arguments: dict[str, Any] = {
            "tenant": tenant,
            "dataset": definition,
            "question": data["question"],
            "session": session,
            "context": context,
            "actor": actor_for_request(request),
        }
        streamed = data["stream"] or "text/event-stream" in request.headers.get("Accept", "")
        if not streamed:
            return Response(services.ask(**arguments).to_json())
        events = _ask_stream(services.ask_events(**arguments), context.trace_id)
        return EventStream.started(events, request)


def _ask_stream(events: Generator[Event, None, Answer], trace_id: str) -> Events:
    """The SSE form of :func:`services.ask_events`; each step under the request's trace id
    (steps may run in different threads). A failure before the first event is the view's
    error answer; after it, an ``error`` event."""
    try:
        item: Event = next(events)
        while True:
            name, value = item
            yield encode_event(name, {"sql": value} if name == "sql" else value.to_json())
            with trace(trace_id):
                try:
                    item = next(events)
                except StopIteration as done:
                    answer: Answer = done.value
                    break
                except AutomateError as exc:
                    yield encode_event("error", error_body(exc.code, exc.message, exc.details))
                    return
        if answer.chart is not None:
            yield encode_event("chart", answer.chart)
        body = answer.to_json()
        yield encode_event("answer", body)
        yield encode_event("done", {"session": body["session"], "message": body["message"]})
    finally:
        with trace(trace_id):
            events.close()


class SQLView(DatasetView):
    """Run the given SQL through the same guard and read-only executor as asked questions."""

    throttle_classes = [APIKeyRateThrottle]
    throttle_scope = "datachat.sql"

    @property
    def rate_limit(self) -> str:
        return str(datachat_settings.SQL_RATE_LIMIT)

    @extend_schema(
        operation_id="datachat_sql",
        request=SQLRequestSerializer,
        responses={
            200: ResultSerializer,
            400: OpenApiResponse(description="The guard refused the SQL (`sql_rejected`)."),
            403: OpenApiResponse(description="The API key lacks `datachat:sql`."),
            404: OpenApiResponse(description="No such dataset in your tenant."),
            422: OpenApiResponse(description="The database refused the SQL (`sql_failed`)."),
        },
    )
    def post(self, request: Request, dataset: str) -> Response:
        _require(request, SQL_SCOPE)
        incoming = SQLRequestSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        result = services.run_sql(
            tenant=_tenant(request),
            dataset=dataset,
            sql=incoming.validated_data["sql"],
            actor=actor_for_request(request),
        )
        return Response(result.to_json())


class SessionListView(generics.ListAPIView):
    """The tenant's live sessions, newest first (an API key's own only)."""

    serializer_class = DataChatSessionSerializer

    def get_queryset(self) -> Any:
        key = _key(self.request)
        return sessions.sessions_for(
            _tenant(self.request), api_key_id=key.pk if key is not None else None
        )

    @extend_schema(operation_id="datachat_sessions")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


def _session(request: Request, session_id: uuid.UUID) -> DataChatSession:
    key = _key(request)
    found = sessions.get_session(
        tenant=_tenant(request),
        session_id=session_id,
        api_key_id=key.pk if key is not None else None,
    )
    _require(request, f"datachat:{found.dataset}")
    return found


class MessageListView(generics.ListAPIView):
    """A session's questions and answers, newest first."""

    serializer_class = DataChatMessageSerializer

    def get_queryset(self) -> Any:
        return _session(self.request, self.kwargs["session"]).messages.all()

    @extend_schema(operation_id="datachat_messages")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)


class ChartImageView(APIView):
    """An answer's chart rendered on the server (``chart.svg`` or ``chart.png``)."""

    @extend_schema(
        operation_id="datachat_chart_image",
        responses={
            (200, "image/svg+xml"): OpenApiTypes.BINARY,
            (200, "image/png"): OpenApiTypes.BINARY,
            404: OpenApiResponse(description="No such message, or it has no chart."),
        },
    )
    def get(
        self, request: Request, session: uuid.UUID, message: uuid.UUID, image_format: str
    ) -> HttpResponse:
        if image_format not in ("svg", "png"):
            raise NotFoundError("Charts are served as chart.svg or chart.png.")
        found = DataChatMessage.objects.filter(
            session=_session(request, session), pk=message
        ).first()
        if found is None or not found.chart:
            raise NotFoundError("This message has no chart.", details={"message": str(message)})
        image = charts.render(found.chart, format="png" if image_format == "png" else "svg")
        content_type = "image/png" if image_format == "png" else "image/svg+xml"
        response = HttpResponse(image, content_type=content_type)
        response["Content-Security-Policy"] = "default-src 'none'; style-src 'unsafe-inline'"
        return response


RESULTS_CSV_DESCRIPTION = """An answer's result table as CSV: a header of the column names,
then the rows stored with the message (the first `MESSAGE_ROWS`, 200 by default; the answer's
`result.row_count` and `truncated` say whether there were more). Streamed. NULL is an empty cell,
dates and timestamps ISO 8601, numerics exact; a text cell that a spreadsheet would read as a
formula (`=`, `+`, `-`, `@`) is prefixed with `'`."""


class ResultsCSVView(APIView):
    """An answer's stored result rows as a CSV download."""

    content_negotiation_class = JSONWhateverAccepted

    @extend_schema(
        operation_id="datachat_results_csv",
        description=RESULTS_CSV_DESCRIPTION,
        responses={
            (200, "text/csv"): OpenApiTypes.STR,
            404: OpenApiResponse(description="No such message, or it has no result."),
        },
    )
    def get(
        self, request: Request, session: uuid.UUID, message: uuid.UUID
    ) -> StreamingHttpResponse:
        found = DataChatMessage.objects.filter(
            session=_session(request, session), pk=message
        ).first()
        if found is None or not found.data.get("columns"):
            raise NotFoundError("This message has no result.", details={"message": str(message)})
        columns = [(column["name"], column["type"]) for column in found.data["columns"]]
        response = StreamingHttpResponse(
            export.csv_lines(columns, found.data.get("rows", [])),
            content_type="text/csv; charset=utf-8",
        )
        response["Content-Disposition"] = f'attachment; filename="datachat-{message}.csv"'
        return response


class ExampleView(DatasetView):
    def required_resource(self, request: Request) -> str:
        dataset = self.kwargs["dataset"]
        if request.method in ("GET", "HEAD", "OPTIONS"):
            return f"datachat:{dataset}"
        return f"datachat-examples:{dataset}"

    def rows(self) -> Any:
        tenant = _tenant(self.request)
        definition = services.dataset_for(tenant, self.kwargs["dataset"])
        return DatasetExample.objects.for_tenant(tenant).filter(dataset=definition.slug)


class ExampleListView(ExampleView, generics.ListAPIView):
    """The dataset's curated question → SQL examples; adding one runs the guard on its SQL."""

    serializer_class = ExampleSerializer

    def get_queryset(self) -> Any:
        return self.rows()

    @extend_schema(operation_id="datachat_examples")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="datachat_example_create", responses={201: ExampleSerializer})
    def post(self, request: Request, dataset: str) -> Response:
        incoming = ExampleSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        created = services.add_example(
            tenant=_tenant(request),
            dataset=dataset,
            question=incoming.validated_data["question"],
            sql=incoming.validated_data["sql"],
        )
        return Response(ExampleSerializer(created).data, status=status.HTTP_201_CREATED)


class ExampleDetailView(ExampleView, generics.RetrieveAPIView):
    serializer_class = ExampleSerializer
    lookup_url_kwarg = "example"

    def get_queryset(self) -> Any:
        return self.rows()

    @extend_schema(operation_id="datachat_example")
    def get(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        return super().get(request, *args, **kwargs)

    @extend_schema(operation_id="datachat_example_update", request=ExampleSerializer)
    def patch(self, request: Request, dataset: str, example: uuid.UUID) -> Response:
        found = self.get_object()
        incoming = ExampleSerializer(found, data=request.data, partial=True)
        incoming.is_valid(raise_exception=True)
        values = incoming.validated_data
        updated = examples.update_example(
            found,
            dataset=services.dataset_for(_tenant(request), dataset),
            question=values.get("question", found.question),
            sql=values.get("sql", found.sql),
        )
        return Response(ExampleSerializer(updated).data)

    @extend_schema(operation_id="datachat_example_delete", responses={204: None})
    def delete(self, request: Request, dataset: str, example: uuid.UUID) -> Response:
        self.get_object().delete()
        return Response(status=status.HTTP_204_NO_CONTENT)
