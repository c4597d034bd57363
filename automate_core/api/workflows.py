"""``/api/v1/automations`` (with their workflow versions) and ``/api/v1/triggers``: build and
ship JSON-graph workflows from code or CI, as the admin does.

A version starts as a draft whose graph passes the same validator as publication
(:func:`automate_core.workflows.graph.validate`); drafts can be edited, a published version
never changes (:meth:`WorkflowVersion.publish`). Making a version live is a step of its own.

API keys need ``automations:read`` to list, read, validate and diff, ``automations:write`` to
create and edit automations and drafts, ``automations:publish`` to publish and make live, and
``triggers:read`` / ``triggers:write`` for triggers.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import transaction
from django.db.models import Max, QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import (
    OpenApiParameter,
    OpenApiResponse,
    extend_schema,
    extend_schema_field,
)
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.request import Request
from rest_framework.response import Response

from automate_core.api.config_views import (
    DETAIL_ACTIONS,
    ConfigSerializer,
    ConfigViewSet,
    TenantSlugRelatedField,
    find_row,
    path_parameter,
    with_parameters,
)
from automate_core.api.permissions import request_tenant
from automate_core.errors import InvalidInputError, NotFoundError
from automate_core.governance import audit
from automate_core.rules.models import Trigger
from automate_core.workflows.graph import Problem, validate
from automate_core.workflows.graph_diff import diff_graphs
from automate_core.workflows.models import Automation, WorkflowVersion

AUTOMATION = path_parameter("key", "The automation's id or slug.")
NESTED_AUTOMATION = path_parameter("automation", "The automation's id or slug.")
VERSION = path_parameter("version", "The version number.", OpenApiTypes.INT)
CONFLICT = OpenApiResponse(description="The version is published, or still a draft.")


def _problems(problems: list[Problem]) -> list[dict[str, str]]:
    return [{"path": path, "message": message} for path, message in problems]


# -- automations ---------------------------------------------------------------------------------


class AutomationSerializer(ConfigSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    live_version = serializers.SerializerMethodField()
    latest_version = serializers.SerializerMethodField()

    class Meta:
        model = Automation
        fields = [
            "id", "name", "slug", "description", "live_version", "latest_version",
            "created_at", "updated_at",
        ]  # fmt: skip

    def get_live_version(self, automation: Automation) -> int | None:
        live = automation.live_version
        return live.version if live else None

    def get_latest_version(self, automation: Automation) -> int | None:
        latest: int | None = automation.versions.aggregate(m=Max("version"))["m"]
        return latest


@with_parameters(DETAIL_ACTIONS, AUTOMATION)
class AutomationViewSet(ConfigViewSet):
    """The tenant's automations. DELETE removes its versions and triggers (audited); an
    automation with runs cannot be deleted (409)."""

    model = Automation
    serializer_class = AutomationSerializer
    resource = "automations"
    audit_kind = "automation"


# -- workflow versions ---------------------------------------------------------------------------


class WorkflowVersionSerializer(serializers.ModelSerializer):
    automation: serializers.SlugRelatedField[Automation] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    graph = serializers.JSONField(help_text="The workflow graph: {start, steps, ...}.")
    is_published = serializers.BooleanField(read_only=True)

    class Meta:
        model = WorkflowVersion
        fields = [
            "id", "automation", "version", "graph", "digest", "is_published", "published_at",
            "is_live", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = ["version", "digest", "published_at", "is_live"]

    def validate_graph(self, graph: Any) -> Any:
        problems = validate(graph)
        if problems:
            raise InvalidInputError(
                f"The graph has {len(problems)} problem(s)",
                details={"problems": _problems(problems)},
            )
        return graph


class GraphSerializer(serializers.Serializer):
    graph = serializers.JSONField()


class ValidationResultSerializer(serializers.Serializer):
    valid = serializers.BooleanField()
    problems = serializers.ListField(child=serializers.DictField(child=serializers.CharField()))


class VersionPublishSerializer(serializers.Serializer):
    make_live = serializers.BooleanField(
        default=False, help_text="Also make this the live version, in the same transaction."
    )


class GraphDiffSerializer(serializers.Serializer):
    automation = serializers.CharField()
    from_version = serializers.IntegerField()
    to_version = serializers.IntegerField()
    steps = serializers.DictField(child=serializers.ListField(child=serializers.CharField()))
    changes = serializers.ListField(
        child=serializers.DictField(),
        help_text="[{path, op: added|removed|changed, before, after}], in path order.",
    )


@with_parameters(("list", "create", "validate"), NESTED_AUTOMATION)
@with_parameters(
    ("retrieve", "update", "partial_update", "publish", "make_live", "diff"),
    NESTED_AUTOMATION,
    VERSION,
)
class WorkflowVersionViewSet(
    mixins.ListModelMixin,
    mixins.RetrieveModelMixin,
    mixins.CreateModelMixin,
    mixins.UpdateModelMixin,
    viewsets.GenericViewSet,
):
    """Versions of one automation, newest first. POST adds a draft; PUT/PATCH edit a draft.

    Filter with ``?published=true`` or ``false``.
    """

    serializer_class = WorkflowVersionSerializer
    lookup_field = "version"
    lookup_value_regex = r"\d+"

    def required_resource(self, request: Request) -> str:
        action_name = getattr(self, "action", None)
        if action_name in ("publish", "make_live"):
            return "automations:publish"
        reading = request.method in ("GET", "HEAD", "OPTIONS") or action_name == "validate"
        return "automations:read" if reading else "automations:write"

    @property
    def automation(self) -> Automation:
        if not hasattr(self, "_automation"):
            rows = Automation.objects.for_tenant(request_tenant(self.request))
            self._automation = cast(Automation, find_row(rows, self.kwargs["automation"]))
        return self._automation

    def get_queryset(self) -> QuerySet[WorkflowVersion]:
        if getattr(self, "swagger_fake_view", False):
            return WorkflowVersion.objects.none()
        versions = self.automation.versions.select_related("automation").order_by("-version")
        published = self.request.query_params.get("published")
        if published in ("true", "false"):
            versions = versions.filter(published_at__isnull=published == "false")
        return versions

    def get_object(self) -> WorkflowVersion:
        return self._version(self.kwargs["version"])

    def _version(self, number: Any) -> WorkflowVersion:
        found = self.get_queryset().filter(version=number).first()
        if found is None:
            raise NotFoundError(f"Automation {self.automation.slug!r} has no version {number}")
        return found

    def _audit(self, action_name: str, version: WorkflowVersion, **data: Any) -> None:
        audit.record(
            action_name,
            actor=audit.actor_for_request(self.request),
            tenant=self.automation.tenant,
            target=f"workflow_version:{version.pk}",
            data={"automation": self.automation.slug, "version": version.version, **data},
        )

    def create(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        automation = self.automation  # an unknown automation is a 404 before the body is read
        incoming = self.get_serializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        with transaction.atomic():
            draft = automation.new_version(incoming.validated_data["graph"])
            self._audit("workflow_version.create", draft)
        return Response(self.get_serializer(draft).data, status=status.HTTP_201_CREATED)

    def update(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        draft = self.get_object()
        incoming = self.get_serializer(
            draft, data=request.data, partial=kwargs.get("partial", False)
        )
        incoming.is_valid(raise_exception=True)
        if "graph" in incoming.validated_data:
            draft.graph = incoming.validated_data["graph"]
        with transaction.atomic():
            draft.save()  # a published version refuses to change (409)
            self._audit("workflow_version.change", draft)
        return Response(self.get_serializer(draft).data)

    @extend_schema(request=GraphSerializer, responses=ValidationResultSerializer)
    @action(detail=False, methods=["post"])
    def validate(self, request: Request, automation: str | None = None) -> Response:
        """Check a graph as a draft or a publication would, without saving anything."""
        self.automation  # noqa: B018 - an unknown automation is a 404
        incoming = GraphSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        problems = validate(incoming.validated_data["graph"])
        return Response({"valid": not problems, "problems": _problems(problems)})

    @extend_schema(
        request=VersionPublishSerializer,
        responses={
            200: WorkflowVersionSerializer,
            400: OpenApiResponse(description="Invalid graph."),
        },
    )
    @action(detail=True, methods=["post"])
    def publish(
        self, request: Request, automation: str | None = None, version: str | None = None
    ) -> Response:
        """Validate and freeze the version (audited as ``workflow.publish``); with
        ``make_live`` it also becomes the live version. Publishing again changes nothing."""
        found = self.get_object()
        incoming = VersionPublishSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        found.publish(
            make_live=incoming.validated_data["make_live"],
            actor=audit.actor_for_request(request),
        )
        return Response(self.get_serializer(self._version(found.version)).data)

    @extend_schema(request=None, responses={200: WorkflowVersionSerializer, 409: CONFLICT})
    @action(detail=True, methods=["post"], url_path="make-live")
    def make_live(
        self, request: Request, automation: str | None = None, version: str | None = None
    ) -> Response:
        """Make this published version the one new runs start on (a roll back, too)."""
        found = self.get_object()
        with transaction.atomic():
            found.make_live()  # a draft is a 409
            self._audit("workflow.make_live", found)
        return Response(self.get_serializer(self._version(found.version)).data)

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "against",
                OpenApiTypes.INT,
                description="The version number to compare with (the 'before' side); "
                "the live version when left out.",
            )
        ],
        responses=GraphDiffSerializer,
    )
    @action(detail=True, methods=["get"])
    def diff(
        self, request: Request, automation: str | None = None, version: str | None = None
    ) -> Response:
        """What changed in the graph from version ``against`` (or the live one) to this one."""
        found = self.get_object()
        against = request.query_params.get("against")
        if against is None:
            before = self.automation.live_version
            if before is None:
                raise InvalidInputError(
                    "No version is live: name the version to compare with, ?against=<number>"
                )
        elif against.isdigit():
            before = self._version(int(against))
        else:
            raise InvalidInputError(
                "?against is a version number", details={"against": against[:100]}
            )
        body = {
            "automation": self.automation.slug,
            "from_version": before.version,
            "to_version": found.version,
            **diff_graphs(before.graph, found.graph).to_json(),
        }
        return Response(body)


# -- triggers ------------------------------------------------------------------------------------


@extend_schema_field(OpenApiTypes.INT)
class VersionNumberField(serializers.Field):
    """A workflow version shown and given by its number (resolved by the serializer)."""

    def to_representation(self, value: WorkflowVersion) -> int:
        return value.version

    def to_internal_value(self, data: Any) -> int:
        if isinstance(data, bool) or not isinstance(data, int) or data < 1:
            raise serializers.ValidationError("A version number (1 or more).")
        return data


class TriggerSerializer(ConfigSerializer):
    fixed_after_create = ()
    automation = TenantSlugRelatedField(
        slug_field="slug", queryset=Automation.objects.all(), help_text="The automation's slug."
    )
    version = VersionNumberField(
        allow_null=True,
        required=False,
        help_text="Pin a published version by number; null follows the live version.",
    )
    condition = serializers.JSONField(
        required=False, allow_null=True, help_text="JSONLogic over {event, payload}; null = always."
    )

    class Meta:
        model = Trigger
        fields = [
            "id", "name", "event_type", "condition", "automation", "version", "is_enabled",
            "created_at", "updated_at",
        ]  # fmt: skip

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        attrs = super().validate(attrs)
        automation = attrs.get("automation") or getattr(self.instance, "automation", None)
        if "version" in attrs:
            number = attrs["version"]
            attrs["version"] = None
            if number is not None:
                pinned = WorkflowVersion.objects.filter(automation=automation, version=number)
                attrs["version"] = pinned.first()
                if attrs["version"] is None:
                    raise serializers.ValidationError(
                        {"version": f"The automation has no version {number}."}
                    )
        elif self.instance is not None and "automation" in attrs:
            attrs["version"] = None  # a pin belongs to the automation it was made on
        return attrs


@with_parameters(DETAIL_ACTIONS, path_parameter("key", "The trigger's id."))
class TriggerViewSet(ConfigViewSet):
    """Triggers of the tenant: an event type and a JSONLogic condition that start an
    automation. Filter with ``?automation=<slug>`` and ``?event_type=``."""

    model = Trigger
    serializer_class = TriggerSerializer
    resource = "triggers"
    audit_kind = "trigger"
    slug_field = None

    def filter_rows(self, rows: QuerySet[Any]) -> QuerySet[Any]:
        rows = rows.select_related("automation", "version")
        params = self.request.query_params
        if automation := params.get("automation"):
            rows = rows.filter(automation__slug=automation)
        if event_type := params.get("event_type"):
            rows = rows.filter(event_type=event_type)
        return rows
