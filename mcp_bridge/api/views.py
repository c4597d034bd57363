"""``/api/v1/mcp/``: the tenant's MCP servers (CRUD, sync, health) and their tools (list,
detail with versions and the approved-vs-live diff, approve, reject).

API key scopes: ``mcp:read`` to list and read (and check health), ``mcp:write`` to queue a
sync, ``mcp:admin`` to create, change or delete servers (a server's ``auto_approve_new``
approves tools) and to approve or reject tools. Rows are found within the caller's tenant
only: another tenant's server or tool is a 404. Every error is a NormalizedError.
"""

from __future__ import annotations

from typing import Any, cast

from django.db import IntegrityError, transaction
from django.db.models import QuerySet
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, extend_schema, extend_schema_view
from rest_framework import mixins, serializers, status, viewsets
from rest_framework.decorators import action
from rest_framework.permissions import SAFE_METHODS
from rest_framework.request import Request
from rest_framework.response import Response

from automate_core.api.permissions import request_tenant
from automate_core.errors import ConflictError
from automate_core.governance import audit
from automate_core.governance.ratelimit import APIKeyRateThrottle
from automate_core.tenancy.models import Tenant
from automate_core.tracing import current_trace_id, new_trace_id
from mcp_bridge import services
from mcp_bridge.api.serializers import (
    ApproveSerializer,
    MCPServerSerializer,
    MCPSyncAcceptedSerializer,
    MCPToolDetailSerializer,
    MCPToolSerializer,
)
from mcp_bridge.conf import mcp_settings
from mcp_bridge.errors import MCPToolNotFound
from mcp_bridge.models import MCPServer, MCPTool

SERVER_PARAMETER = OpenApiParameter(
    "server", OpenApiTypes.STR, OpenApiParameter.PATH, description="The server's slug or id."
)
TOOL_PARAMETER = OpenApiParameter(
    "tool", OpenApiTypes.UUID, OpenApiParameter.PATH, description="The tool's id."
)


class _MCPViewSet(viewsets.GenericViewSet):
    #: Scope of each non-safe action; safe methods need ``mcp:read``, the rest ``mcp:admin``.
    action_scopes: dict[str, str] = {}

    def required_resource(self, request: Request) -> str:
        action_name = getattr(self, "action", None) or ""
        if action_name in self.action_scopes:
            return self.action_scopes[action_name]
        return "mcp:read" if request.method in SAFE_METHODS else "mcp:admin"

    @property
    def tenant(self) -> Tenant:
        tenant = request_tenant(self.request)
        assert tenant is not None  # IsTenantMember let the request in
        return tenant


@extend_schema_view(
    retrieve=extend_schema(parameters=[SERVER_PARAMETER]),
    update=extend_schema(parameters=[SERVER_PARAMETER]),
    partial_update=extend_schema(parameters=[SERVER_PARAMETER]),
    destroy=extend_schema(parameters=[SERVER_PARAMETER]),
)
class MCPServerViewSet(
    mixins.CreateModelMixin,
    mixins.RetrieveModelMixin,
    mixins.UpdateModelMixin,
    mixins.DestroyModelMixin,
    mixins.ListModelMixin,
    _MCPViewSet,
):
    """The tenant's MCP servers. Changes are audited; DELETE removes its tools and versions."""

    serializer_class = MCPServerSerializer
    lookup_url_kwarg = "server"
    action_scopes = {"sync": "mcp:write", "health": "mcp:read"}
    http_method_names = ["get", "post", "put", "patch", "delete", "head", "options"]

    def get_queryset(self) -> QuerySet[MCPServer]:
        if getattr(self, "swagger_fake_view", False):
            return MCPServer.objects.none()
        return cast(
            "QuerySet[MCPServer]", MCPServer.objects.for_tenant(self.tenant)
        ).select_related("tenant")

    def get_object(self) -> MCPServer:
        return services.get_server(self.tenant, self.kwargs["server"])

    def get_throttles(self) -> list[Any]:
        return [APIKeyRateThrottle()] if self.action in ("sync", "health") else []

    @property
    def rate_limit(self) -> str:
        return str(mcp_settings.API_RATE_LIMIT)

    throttle_scope = "mcp.server"

    def _audit(self, verb: str, server: MCPServer, data: Any = None) -> None:
        audit.record(
            f"mcp.server.{verb}",
            actor=audit.actor_for_request(self.request),
            tenant=self.tenant,
            target=f"mcp.server:{server.slug}",
            data=data,
        )

    def perform_create(self, serializer: serializers.BaseSerializer[Any]) -> None:
        try:
            with transaction.atomic():
                server = serializer.save(tenant=self.tenant)
                self._audit("create", server, dict(serializer.validated_data))
        except IntegrityError:  # a concurrent create took the slug after validation
            raise ConflictError("This tenant already has a server with this slug.") from None

    def perform_update(self, serializer: serializers.BaseSerializer[Any]) -> None:
        with transaction.atomic():
            server = serializer.save()
            self._audit("change", server, dict(serializer.validated_data))

    def perform_destroy(self, instance: MCPServer) -> None:
        with transaction.atomic():
            self._audit("delete", instance)
            instance.delete()

    @extend_schema(
        operation_id="mcp_server_sync",
        request=None,
        responses={202: MCPSyncAcceptedSerializer},
        parameters=[SERVER_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def sync(self, request: Request, server: str) -> Response:
        """Queue a sync of the server's tools; follow it on the server (status, sync_stats)."""
        job = services.queue_sync(self.get_object(), actor=audit.actor_for_request(request))
        return Response(
            {"job_id": str(job.pk), "trace_id": current_trace_id() or new_trace_id()},
            status=status.HTTP_202_ACCEPTED,
        )

    @extend_schema(
        operation_id="mcp_server_health",
        responses={200: OpenApiTypes.OBJECT},
        parameters=[SERVER_PARAMETER],
    )
    @action(detail=True, methods=["get"])
    def health(self, request: Request, server: str) -> Response:
        """Open a session to the server now; ``ok`` says whether it worked (also stored)."""
        return Response(services.check_health(self.get_object()))


class MCPToolViewSet(mixins.ListModelMixin, mixins.RetrieveModelMixin, _MCPViewSet):
    """Tools of the tenant's servers; ``?server=<slug>`` and ``?status=`` filter the list."""

    lookup_url_kwarg = "tool"
    action_scopes = {"approve": "mcp:admin", "reject": "mcp:admin"}

    def get_serializer_class(self) -> type[serializers.BaseSerializer[Any]]:
        return MCPToolDetailSerializer if self.action == "retrieve" else MCPToolSerializer

    def get_queryset(self) -> QuerySet[MCPTool]:
        if getattr(self, "swagger_fake_view", False):
            return MCPTool.objects.none()
        rows = cast("QuerySet[MCPTool]", MCPTool.objects.for_tenant(self.tenant)).select_related(
            "server__tenant", "approved_version"
        )
        params = self.request.query_params
        if params.get("server"):
            rows = rows.filter(server__slug=params["server"])
        if params.get("status"):
            rows = rows.filter(status=params["status"])
        if self.action == "retrieve":
            rows = rows.prefetch_related("versions")
        return rows

    def get_object(self) -> MCPTool:
        key = self.kwargs["tool"]
        found = self.get_queryset().filter(pk=key).first() if services.is_uuid(key) else None
        if found is None:
            raise MCPToolNotFound("No MCP tool with this id")
        return found

    @extend_schema(
        operation_id="mcp_tool_approve",
        request=ApproveSerializer,
        responses={200: MCPToolDetailSerializer},
        parameters=[TOOL_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def approve(self, request: Request, tool: str) -> Response:
        """Approve the tool's live definition as a new version (``pin``: the one you read)."""
        incoming = ApproveSerializer(data=request.data)
        incoming.is_valid(raise_exception=True)
        found = self.get_object()
        services.approve_tool(
            found,
            actor=audit.actor_for_request(request),
            expected_pin=incoming.validated_data.get("pin"),
        )
        return Response(MCPToolDetailSerializer(self.get_object()).data)

    @extend_schema(
        operation_id="mcp_tool_reject",
        request=None,
        responses={200: MCPToolDetailSerializer},
        parameters=[TOOL_PARAMETER],
    )
    @action(detail=True, methods=["post"])
    def reject(self, request: Request, tool: str) -> Response:
        """Refuse the tool for calls until someone approves it."""
        services.reject_tool(self.get_object(), actor=audit.actor_for_request(request))
        return Response(MCPToolDetailSerializer(self.get_object()).data)
