"""``GET /api/v1/llm/usage``: the caller's tenant's LLM calls, tokens and cost, grouped.

Every gateway call is counted, charged or not (a refused or failed call counts as a call with
the tokens it was charged, often none). Tokens and costs come from the usage rows, which keep
the prices they were charged at, so a report of a past period never changes when prices do.
Days are UTC.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

from django.db.models import Count, DecimalField, IntegerField, Q, QuerySet, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from automate_core.api.permissions import request_tenant
from automate_core.errors import InvalidInputError
from automate_core.governance.models import DECIMAL_PLACES, MAX_DIGITS
from automate_llm.models import LLMRequest

GROUPS = ("day", "model")
DEFAULT_DAYS = 30
MAX_DAYS = 366


class UsageRowSerializer(serializers.Serializer):
    day = serializers.DateField(required=False, help_text="UTC day; with group_by=day.")
    provider_type = serializers.CharField(required=False, help_text="With group_by=model.")
    model = serializers.CharField(required=False, help_text="With group_by=model.")
    calls = serializers.IntegerField(help_text="Gateway calls, including failed and refused.")
    failed_calls = serializers.IntegerField()
    input_tokens = serializers.IntegerField(help_text="Includes cached_tokens.")
    output_tokens = serializers.IntegerField()
    cached_tokens = serializers.IntegerField()
    cost = serializers.DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES)


class UsageReportSerializer(serializers.Serializer):
    group_by = serializers.ListField(child=serializers.ChoiceField(choices=GROUPS))
    start = serializers.DateTimeField(help_text="Inclusive.")
    end = serializers.DateTimeField(help_text="Exclusive.")
    currency = serializers.CharField()
    results = UsageRowSerializer(many=True)
    totals = UsageRowSerializer()


class UsageReportView(APIView):
    """Calls, tokens (in, out, cached) and cost of the caller's tenant, by day and/or model."""

    required_resource = "llm:usage"

    @extend_schema(
        operation_id="llm_usage_report",
        parameters=[
            OpenApiParameter(
                "group_by",
                OpenApiTypes.STR,
                description="day, model, or day,model (default day).",
                enum=["day", "model", "day,model", "model,day"],
            ),
            OpenApiParameter(
                "from",
                OpenApiTypes.STR,
                description="Start, inclusive: a date (UTC midnight) or an ISO datetime. "
                f"Default: {DEFAULT_DAYS - 1} days before today.",
            ),
            OpenApiParameter(
                "to",
                OpenApiTypes.STR,
                description="End: a date includes that whole day; an ISO datetime is exclusive. "
                f"Default: now. At most {MAX_DAYS} days after from.",
            ),
        ],
        responses=UsageReportSerializer,
    )
    def get(self, request: Request) -> Response:
        params = request.query_params
        group_by = _group_by(params.get("group_by", ""))
        start, end = _period(params.get("from", ""), params.get("to", ""))
        calls = LLMRequest.objects.for_tenant(request_tenant(request)).filter(
            created_at__gte=start, created_at__lt=end
        )
        rows = _aggregate(calls, group_by)
        report = {
            "group_by": group_by,
            "start": start,
            "end": end,
            "currency": "USD",
            "results": rows,
            "totals": _totals(rows),
        }
        return Response(UsageReportSerializer(report).data)


def _group_by(raw: str) -> list[str]:
    wanted = [part.strip() for part in raw.split(",") if part.strip()] or ["day"]
    unknown = [part for part in wanted if part not in GROUPS]
    if unknown or len(set(wanted)) != len(wanted):
        raise InvalidInputError(
            "group_by takes day, model or day,model.",
            details={"group_by": raw, "allowed": list(GROUPS)},
        )
    return [group for group in GROUPS if group in wanted]


def _period(raw_from: str, raw_to: str) -> tuple[dt.datetime, dt.datetime]:
    now = timezone.now()
    today = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    start = _moment("from", raw_from) if raw_from else today - dt.timedelta(days=DEFAULT_DAYS - 1)
    end = _moment("to", raw_to, end_of_day=True) if raw_to else now
    if end <= start:
        raise InvalidInputError(
            "to must be after from.", details={"from": start.isoformat(), "to": end.isoformat()}
        )
    if end - start > dt.timedelta(days=MAX_DAYS):
        raise InvalidInputError(
            f"A report covers at most {MAX_DAYS} days; ask for several periods.",
            details={"from": start.isoformat(), "to": end.isoformat()},
        )
    return start, end


def _moment(name: str, raw: str, *, end_of_day: bool = False) -> dt.datetime:
    """A date (UTC midnight; the next midnight for an inclusive end) or an aware datetime."""
    value: dt.datetime | None
    try:
        day = parse_date(raw)
        value = None if day is not None else parse_datetime(raw)
    except ValueError:
        day, value = None, None
    if day is not None:
        midnight = dt.datetime.combine(day, dt.time(), tzinfo=dt.UTC)
        return midnight + dt.timedelta(days=1) if end_of_day else midnight
    if value is None:
        raise InvalidInputError(
            f"{name} must be a date (2026-01-31) or an ISO datetime.", details={name: raw}
        )
    return value if timezone.is_aware(value) else value.replace(tzinfo=dt.UTC)


def _aggregate(calls: QuerySet[LLMRequest], group_by: list[str]) -> list[dict[str, Any]]:
    keys: list[str] = []
    if "day" in group_by:
        calls = calls.annotate(day=TruncDate("created_at", tzinfo=dt.UTC))
        keys.append("day")
    if "model" in group_by:
        keys += ["provider_type", "model"]
    money = DecimalField(max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES)
    zero = Value(0, output_field=IntegerField())
    rows = (
        calls.values(*keys)
        .annotate(
            calls=Count("pk"),
            failed_calls=Count("pk", filter=Q(success=False)),
            input_tokens=Coalesce(Sum("usage__input_tokens"), zero),
            output_tokens=Coalesce(Sum("usage__output_tokens"), zero),
            cached_tokens=Coalesce(Sum("usage__cached_tokens"), zero),
            cost=Coalesce(Sum("usage__cost"), Value(Decimal(0), output_field=money)),
        )
        .order_by(*keys)
    )
    return list(rows)


def _totals(rows: list[dict[str, Any]]) -> dict[str, Any]:
    fields = ("calls", "failed_calls", "input_tokens", "output_tokens", "cached_tokens")
    totals: dict[str, Any] = {name: sum(row[name] for row in rows) for name in fields}
    totals["cost"] = sum((row["cost"] for row in rows), Decimal(0))
    return totals
