"""MCP servers a tenant connects, the tools they offer, and each tool's approved definitions.

A tool is callable only while the server still describes it exactly as a person approved it:
:class:`MCPTool` keeps the *live* definition (what the last sync or call saw) beside
``approved_version``, an immutable :class:`MCPToolVersion` holding the approved definition and
its pin (:mod:`mcp_bridge.pins`). When the live pin differs from the approved one the tool is
``quarantined`` and every call is refused until someone approves the new definition.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from django.core.exceptions import ValidationError
from django.core.validators import URLValidator
from django.db import models

from automate_core.base import (
    SluggedModel,
    StatusModel,
    TenantQuerySet,
    TenantScopedModel,
    TimeStampedModel,
    UUIDModel,
)
from mcp_bridge.pins import pinned_definition

if TYPE_CHECKING:
    from mcp_bridge.results import ToolResult
    from mcp_bridge.sync import SyncReport


class MCPServer(UUIDModel, TimeStampedModel, TenantScopedModel, SluggedModel):
    """An MCP server: a URL (streamable HTTP, or legacy SSE), or a stdio command named in
    ``AUTOMATE_MCP["STDIO_COMMANDS"]``. ``auth_config`` holds SecretRefs only where secrets go:
    ``{"bearer": {"$secret": "NAME"}, "headers": {"X-Api-Key": {"$secret": "KEY"}}}``."""

    class Transport(models.TextChoices):
        STREAMABLE_HTTP = "streamable_http", "Streamable HTTP"
        SSE = "sse", "SSE (legacy)"
        STDIO = "stdio", "stdio"

    class Status(models.TextChoices):
        NEW = "new"
        QUEUED = "queued"
        SYNCING = "syncing"
        READY = "ready"
        ERROR = "error"
        DISABLED = "disabled"

    transport = models.CharField(
        max_length=20, choices=Transport.choices, default=Transport.STREAMABLE_HTTP
    )
    url = models.CharField(
        max_length=2000, blank=True, validators=[URLValidator(schemes=["http", "https"])]
    )
    stdio_command = models.CharField(
        max_length=100,
        blank=True,
        help_text='A key of AUTOMATE_MCP["STDIO_COMMANDS"] (never a command line).',
    )
    auth_config = models.JSONField(
        default=dict,
        blank=True,
        help_text='{"bearer": {"$secret": "NAME"}, "headers": {"X-Key": {"$secret": "KEY"}}}',
    )
    auto_approve_new = models.BooleanField(
        default=False,
        help_text="Approve tools that appear for the first time; changed tools are always "
        "quarantined.",
    )
    status = models.CharField(
        max_length=16, choices=Status.choices, default=Status.NEW, db_index=True
    )
    sync_interval_minutes = models.PositiveIntegerField(
        null=True,
        blank=True,
        help_text='Minutes between scheduled syncs; empty: AUTOMATE_MCP["SYNC_INTERVAL_MINUTES"], '
        "0: never.",
    )
    last_synced_at = models.DateTimeField(null=True, blank=True, editable=False)
    #: When a sync was last queued (by a person, the schedule or a list_changed notice).
    sync_queued_at = models.DateTimeField(null=True, blank=True, editable=False)
    last_error = models.TextField(blank=True, editable=False)
    # {"ok", "checked_at", "latency_ms", "protocol_version", "server_info", "error"}
    health = models.JSONField(default=dict, blank=True, editable=False)
    # {"tools", "resources", "prompts", "pages", "created", "changed", "removed"} of the last sync
    sync_stats = models.JSONField(default=dict, blank=True, editable=False)

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["tenant", "slug"], name="mcp_server_slug")]
        verbose_name = "MCP server"

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        from mcp_bridge.auth import check_auth_config
        from mcp_bridge.client import check_stdio_command

        errors: dict[str, str] = {}
        if self.transport == self.Transport.STDIO:
            if self.url:
                errors["url"] = "A stdio server has no URL."
            try:
                check_stdio_command(self.stdio_command)
            except ValidationError as exc:
                errors["stdio_command"] = exc.messages[0]
        else:
            if not self.url:
                errors["url"] = "An HTTP server needs a URL."
            if self.stdio_command:
                errors["stdio_command"] = "Only stdio servers name a command."
        try:
            check_auth_config(self.auth_config)
        except ValidationError as exc:
            errors["auth_config"] = "; ".join(exc.messages)
        if errors:
            raise ValidationError(errors)

    def delete(self, *args: Any, **kwargs: Any) -> Any:
        """Delete the server with its tools and their versions. A server whose tools a
        published workflow version was built with is kept (ConflictError)."""
        from django.db import transaction
        from django.db.models import ProtectedError

        from automate_core.errors import ConflictError

        try:
            with transaction.atomic():
                # A tool's approved_version protects the version from deletion on its own;
                # here the tool goes too.
                MCPTool.objects.filter(server=self).update(approved_version=None)
                return super().delete(*args, **kwargs)
        except ProtectedError:
            raise ConflictError(
                "Published workflow versions use this server's tools; it cannot be deleted."
            ) from None

    def sync_tools(self) -> SyncReport:
        """List the server's tools now and record what changed (see :mod:`mcp_bridge.sync`)."""
        from mcp_bridge.sync import sync_server

        return sync_server(self)

    def health_check(self) -> dict[str, Any]:
        """Open a session now and record whether it worked (``health``)."""
        from mcp_bridge.services import check_health

        return check_health(self)


class MCPTool(UUIDModel, TimeStampedModel, TenantScopedModel, StatusModel):
    """A tool of a server, with its live definition and the version approved for calls.

    ``argument_policy`` is applied to every call before the schema check:
    ``{"fixed": {"name": value}, "allowed": {"name": [values]}, "forbidden": ["name"]}``:
    fixed values replace whatever the caller sent, allowed lists bound a value, forbidden keys
    are refused.
    """

    INITIAL_STATUS = "pending"
    TRANSITIONS: ClassVar[dict[str, set[str]]] = {
        "pending": {"approved", "rejected", "removed"},
        "approved": {"quarantined", "rejected", "removed"},
        "quarantined": {"approved", "rejected", "removed"},
        "rejected": {"approved", "removed"},
        "removed": {"pending", "approved", "quarantined", "rejected"},
    }
    ACTIVE_STATUSES: ClassVar[set[str]] = {"approved"}

    class Status(models.TextChoices):
        PENDING = "pending"
        APPROVED = "approved"
        QUARANTINED = "quarantined"
        REJECTED = "rejected"
        REMOVED = "removed"

    status = models.CharField(max_length=32, choices=Status.choices, db_index=True, blank=True)
    server = models.ForeignKey(MCPServer, on_delete=models.CASCADE, related_name="tools")
    name = models.CharField(max_length=200)
    title = models.CharField(max_length=300, blank=True)
    description = models.TextField(blank=True)
    input_schema = models.JSONField(default=dict, blank=True)
    output_schema = models.JSONField(null=True, blank=True)
    annotations = models.JSONField(null=True, blank=True)
    #: The pin of the live definition (what the server said last).
    live_pin = models.CharField(max_length=64)
    approved_version = models.ForeignKey(
        "MCPToolVersion", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    argument_policy = models.JSONField(default=dict, blank=True)
    last_seen_at = models.DateTimeField(null=True, blank=True, editable=False)

    class Meta:
        ordering = ["server_id", "name"]
        constraints = [
            models.UniqueConstraint(fields=["server", "name"], name="mcp_tool_name"),
        ]
        verbose_name = "MCP tool"

    def __str__(self) -> str:
        return f"{self.server.slug}/{self.name}"

    def clean(self) -> None:
        from mcp_bridge.policy import check_argument_policy

        try:
            check_argument_policy(self.argument_policy)
        except ValidationError as exc:
            raise ValidationError({"argument_policy": exc.messages}) from None

    @property
    def live_definition(self) -> dict[str, Any]:
        """The live definition in MCP wire names (the pinned fields plus ``title``)."""
        return {
            **pinned_definition(
                {
                    "name": self.name,
                    "description": self.description or None,
                    "inputSchema": self.input_schema,
                    "outputSchema": self.output_schema,
                    "annotations": self.annotations,
                }
            ),
            "title": self.title or None,
        }

    @property
    def approved_pin(self) -> str | None:
        return self.approved_version.pin if self.approved_version is not None else None

    def execute(self, input: dict[str, Any], **options: Any) -> ToolResult:
        """Call the tool with ``input`` (see :func:`mcp_bridge.services.call_tool`)."""
        from mcp_bridge.services import call_tool

        return call_tool(self, input, **options)


class MCPToolVersionQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> int:
        raise ValidationError("Approved MCP tool versions are immutable.")


class MCPToolVersion(UUIDModel, TenantScopedModel):
    """One approved definition of a tool, with its pin. Never changed once written."""

    tool = models.ForeignKey(MCPTool, on_delete=models.CASCADE, related_name="versions")
    number = models.PositiveIntegerField()
    #: The definition as approved, in MCP wire names (pinned fields plus ``title``).
    definition = models.JSONField()
    pin = models.CharField(max_length=64, db_index=True)
    #: Who approved it: ``user:<id>``, ``api_key:<prefix>`` or ``system:auto_approve``.
    approved_by = models.CharField(max_length=200)
    approved_at = models.DateTimeField()

    objects = models.Manager.from_queryset(MCPToolVersionQuerySet)()  # type: ignore[misc]

    class Meta:
        ordering = ["tool_id", "-number"]
        constraints = [
            models.UniqueConstraint(fields=["tool", "number"], name="mcp_tool_version_number")
        ]
        verbose_name = "MCP tool version"

    def __str__(self) -> str:
        return f"{self.tool} v{self.number} ({self.pin[:12]})"

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise ValidationError("Approved MCP tool versions are immutable.")
        super().save(*args, **kwargs)


class MCPWorkflowPin(UUIDModel, TenantScopedModel):
    """The approved pin of an MCP tool that a published workflow version was built with
    (written when the version is published, never changed): a run of that version refuses the
    tool once its approved pin is another, until a new version is published."""

    workflow_version = models.ForeignKey(
        "automate_core.WorkflowVersion", on_delete=models.CASCADE, related_name="+"
    )
    server = models.CharField(max_length=100, help_text="The server's slug, as the graph names it.")
    tool_name = models.CharField(max_length=200)
    tool_version = models.ForeignKey(MCPToolVersion, on_delete=models.PROTECT, related_name="+")
    pin = models.CharField(max_length=64)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["workflow_version", "server", "tool_name"], name="mcp_workflow_pin"
            )
        ]
        verbose_name = "MCP tool pin of a workflow version"

    def __str__(self) -> str:
        return f"{self.server}/{self.tool_name} @ {self.pin[:12]}"


class PublicMCPExposure(UUIDModel, TimeStampedModel, TenantScopedModel):
    """Tools a tenant publishes as a public MCP server at ``/mcp/public/<tenant slug>``: no
    key, rate limited per client address, listing only ``tools`` (names as ``/mcp`` lists
    them, such as ``query_docs``), the way companies publish a docs MCP server."""

    tools = models.JSONField(
        default=list, blank=True, help_text='Tool names to publish, e.g. ["query_docs"].'
    )
    is_active = models.BooleanField(default=True)
    rate_limit = models.CharField(
        max_length=32, default="30/min", help_text="Requests per client address."
    )

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["tenant"], name="one_public_mcp_exposure_per_tenant")
        ]
        verbose_name = "public MCP exposure"

    def __str__(self) -> str:
        return f"/mcp/public/{self.tenant.slug}"

    def clean(self) -> None:
        if not isinstance(self.tools, list) or not all(isinstance(t, str) for t in self.tools):
            raise ValidationError({"tools": "A list of tool names."})
        from automate_core.governance.ratelimit import Rate

        try:
            Rate.parse(self.rate_limit)
        except ValueError as exc:
            raise ValidationError({"rate_limit": str(exc)}) from None
