"""Admin pages of the MCP bridge. Server changes are audited; a tool's page shows what changed
between its approved and live definitions, and approving or rejecting goes through the
services (one immutable version per approval, every decision audited)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from automate_core.admin_base import ImmutableAdmin, TenantScopedAdmin, redacted_json
from automate_core.errors import AutomateError
from automate_core.governance import audit
from mcp_bridge import oauth_flow, services
from mcp_bridge.diff import definition_diff
from mcp_bridge.models import (
    MCPServer,
    MCPTool,
    MCPToolVersion,
    MCPWorkflowPin,
    PublicMCPExposure,
)


@admin.register(MCPServer)
class MCPServerAdmin(TenantScopedAdmin):
    list_display = ["name", "tenant", "transport", "status", "tool_count", "last_synced_at"]
    list_filter = ["transport", "status"]
    search_fields = ["name", "slug", "url"]
    readonly_fields = [
        "status", "last_synced_at", "sync_queued_at", "last_error", "shown_health", "shown_stats",
    ]  # fmt: skip
    actions = ["queue_sync", "check_health", "authorize_oauth"]

    def get_urls(self) -> list[Any]:
        callback = path(
            "oauth-callback/",
            self.admin_site.admin_view(self.oauth_callback),
            name="mcp_bridge_mcpserver_oauth_callback",
        )
        return [callback, *super().get_urls()]

    @admin.display(description="tools")
    def tool_count(self, obj: MCPServer) -> int:
        return obj.tools.exclude(status=MCPTool.Status.REMOVED).count()

    @admin.display(description="health")
    def shown_health(self, obj: MCPServer) -> str:
        return redacted_json(obj.health)

    @admin.display(description="last sync")
    def shown_stats(self, obj: MCPServer) -> str:
        return redacted_json(obj.sync_stats)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                f"mcp.server.{'change' if change else 'create'}",
                actor=audit.actor_for_request(request),
                tenant=obj.tenant,
                target=f"mcp.server:{obj.slug}",
                data={name: form.cleaned_data.get(name) for name in form.changed_data},
            )

    def delete_model(self, request: HttpRequest, obj: Any) -> None:
        with transaction.atomic():
            audit.record(
                "mcp.server.delete",
                actor=audit.actor_for_request(request),
                tenant=obj.tenant,
                target=f"mcp.server:{obj.slug}",
            )
            super().delete_model(request, obj)

    @admin.action(description="Sync selected servers (queued)")
    def queue_sync(self, request: HttpRequest, queryset: Any) -> None:
        for server in queryset:
            services.queue_sync(server, actor=audit.actor_for_request(request))
        messages.info(request, f"Queued {queryset.count()} sync(s).")

    @admin.action(description="Authorize with OAuth (sign in to the server)")
    def authorize_oauth(self, request: HttpRequest, queryset: Any) -> HttpResponse | None:
        """Start the authorization code sign-in of one server: the person is sent to its
        authorization server, which sends them back to :meth:`oauth_callback`."""
        server = queryset.select_related("tenant").first() if queryset.count() == 1 else None
        oauth = (server.auth_config or {}).get("oauth") if server is not None else None
        if server is None or (oauth or {}).get("grant") != "authorization_code":
            messages.warning(request, "Select one server whose OAuth grant is authorization_code.")
            return None
        callback = request.build_absolute_uri(reverse("admin:mcp_bridge_mcpserver_oauth_callback"))
        try:
            url = oauth_flow.start(server, redirect_uri=callback)
        except AutomateError as exc:
            messages.error(request, f"{server}: {exc.message}")
            return None
        if url is None:
            messages.info(request, f"{server}: already authorized.")
            return None
        return HttpResponseRedirect(url)

    def oauth_callback(self, request: HttpRequest) -> HttpResponse:
        """Where the authorization server sends the person back: finish the sign-in."""
        changelist = reverse("admin:mcp_bridge_mcpserver_changelist")
        if request.GET.get("error"):
            messages.error(request, f"Sign-in refused: {request.GET['error']}")
            return HttpResponseRedirect(changelist)
        try:
            server_id = oauth_flow.complete(
                request.GET.get("state", ""),
                request.GET.get("code", ""),
                iss=request.GET.get("iss"),
            )
        except AutomateError as exc:
            messages.error(request, exc.message)
            return HttpResponseRedirect(changelist)
        server = self.get_queryset(request).select_related("tenant").get(pk=server_id)
        audit.record(
            "mcp.server.oauth_authorized",
            actor=audit.actor_for_request(request),
            tenant=server.tenant,
            target=f"mcp.server:{server.slug}",
        )
        messages.info(request, f"{server}: signed in; its tokens are stored encrypted.")
        return HttpResponseRedirect(reverse("admin:mcp_bridge_mcpserver_change", args=[server.pk]))

    @admin.action(description="Check health of selected servers now")
    def check_health(self, request: HttpRequest, queryset: Any) -> None:
        for server in queryset.select_related("tenant"):
            health = services.check_health(server)
            level = messages.INFO if health.get("ok") else messages.WARNING
            messages.add_message(
                request, level, f"{server}: {'ok' if health.get('ok') else health}"
            )


def render_diff(tool: MCPTool) -> SafeString:
    """The approved-vs-live difference as HTML: one block per changed field."""
    approved = tool.approved_version.definition if tool.approved_version else None
    changes = definition_diff(approved, tool.live_definition)
    if not changes:
        return format_html("<p>{}</p>", "The live definition is the approved one.")
    styles = {"-": "background:#fee", "+": "background:#efe"}
    blocks = []
    for name, lines in changes.items():
        body = format_html_join(
            "\n", '<span style="{}">{}</span>', ((styles.get(line[:1], ""), line) for line in lines)
        )
        blocks.append(format_html("<h4>{}</h4><pre>{}</pre>", name, body))
    return format_html_join("", "{}", ((block,) for block in blocks))


@admin.register(MCPTool)
class MCPToolAdmin(TenantScopedAdmin):
    list_display = ["name", "server", "status", "short_pin", "approved_version", "last_seen_at"]
    list_filter = ["status", "server"]
    list_select_related = ["server", "approved_version"]
    search_fields = ["name", "description"]
    fields = [
        "server", "name", "status", "definition_diff", "title", "description",
        "shown_input_schema", "live_pin", "approved_version", "argument_policy", "last_seen_at",
    ]  # fmt: skip
    readonly_fields = [
        "server", "name", "status", "definition_diff", "title", "description",
        "shown_input_schema", "live_pin", "approved_version", "last_seen_at",
    ]  # fmt: skip
    actions = ["approve", "reject"]

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # tools come from syncs

    @admin.display(description="pin")
    def short_pin(self, obj: MCPTool) -> str:
        return obj.live_pin[:12]

    @admin.display(description="input schema")
    def shown_input_schema(self, obj: MCPTool) -> str:
        return redacted_json(obj.input_schema)

    @admin.display(description="approved vs live")
    def definition_diff(self, obj: MCPTool) -> SafeString:
        return render_diff(obj)

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            audit.record(
                "mcp.tool.policy",
                actor=audit.actor_for_request(request),
                tenant=obj.server.tenant,
                target=f"mcp.tool:{obj}",
                data={"argument_policy": obj.argument_policy},
            )

    @admin.action(description="Approve the live definition of selected tools")
    def approve(self, request: HttpRequest, queryset: Any) -> None:
        self._decide(request, queryset, services.approve_tool, "Approved")

    @admin.action(description="Reject selected tools")
    def reject(self, request: HttpRequest, queryset: Any) -> None:
        self._decide(request, queryset, services.reject_tool, "Rejected")

    def _decide(self, request: HttpRequest, queryset: Any, decide: Any, verb: str) -> None:
        actor = audit.actor_for_request(request)
        done = 0
        for tool in queryset.select_related("server__tenant", "approved_version"):
            try:
                decide(tool, actor=actor)
                done += 1
            except AutomateError as exc:
                messages.warning(request, f"{tool}: {exc.message}")
        messages.info(request, f"{verb} {done} tool(s).")


@admin.register(MCPToolVersion)
class MCPToolVersionAdmin(ImmutableAdmin):
    """Approved definitions: read-only, as they are immutable."""

    list_display = ["tool", "number", "short_pin", "approved_by", "approved_at"]
    list_select_related = ["tool__server"]
    readonly_fields = ["tool", "number", "pin", "shown_definition", "approved_by", "approved_at"]
    exclude = ["definition", "tenant"]

    @admin.display(description="pin")
    def short_pin(self, obj: MCPToolVersion) -> str:
        return obj.pin[:12]

    @admin.display(description="definition")
    def shown_definition(self, obj: MCPToolVersion) -> str:
        return redacted_json(obj.definition)


@admin.register(PublicMCPExposure)
class PublicMCPExposureAdmin(TenantScopedAdmin):
    """What a tenant publishes at ``/mcp/public/<tenant slug>``, with no key."""

    list_display = ["__str__", "tenant", "is_active", "rate_limit"]
    list_filter = ["is_active"]


@admin.register(MCPWorkflowPin)
class MCPWorkflowPinAdmin(ImmutableAdmin):
    """The tool pins each published workflow version was built with (written at publish)."""

    list_display = ["__str__", "workflow_version", "tenant"]
    list_filter = ["server"]
    list_select_related = ["workflow_version", "tenant"]
    search_fields = ["server", "tool_name", "pin"]
    readonly_fields = ["workflow_version", "server", "tool_name", "tool_version", "pin"]
    exclude = ["tenant"]
