"""Serializers of ``/api/v1/mcp/``."""

from __future__ import annotations

from typing import Any

from django.core.exceptions import ValidationError as DjangoValidationError
from rest_framework import serializers

from automate_core.api.permissions import request_tenant
from mcp_bridge.diff import definition_diff
from mcp_bridge.models import MCPServer, MCPTool, MCPToolVersion


class MCPServerSerializer(serializers.ModelSerializer):
    slug = serializers.SlugField(
        max_length=100, required=False, help_text="Derived from the name when left out."
    )
    auth_config = serializers.JSONField(
        required=False,
        help_text='{"bearer": {"$secret": "NAME"}, "headers": {"X-Key": {"$secret": "KEY"}}}: '
        "credentials only as SecretRefs.",
    )
    tool_counts = serializers.SerializerMethodField(help_text="Tools by status.")

    class Meta:
        model = MCPServer
        fields = [
            "id", "name", "slug", "transport", "url", "stdio_command", "auth_config",
            "auto_approve_new", "sync_interval_minutes", "status", "last_synced_at",
            "sync_queued_at", "last_error", "health", "sync_stats", "tool_counts", "created_at",
            "updated_at",
        ]  # fmt: skip
        read_only_fields = [
            "status", "last_synced_at", "sync_queued_at", "last_error", "health", "sync_stats",
        ]  # fmt: skip

    def get_tool_counts(self, server: MCPServer) -> dict[str, int]:
        counts: dict[str, int] = {}
        for status in server.tools.values_list("status", flat=True):
            counts[status] = counts.get(status, 0) + 1
        return counts

    def validate_slug(self, value: str) -> str:
        if self.instance is not None:
            if value != self.instance.slug:
                raise serializers.ValidationError(
                    "The slug cannot change: workflows refer to the server by it."
                )
            return value
        tenant = request_tenant(self.context["request"])
        if MCPServer.objects.for_tenant(tenant).filter(slug=value).exists():
            raise serializers.ValidationError("This tenant already has a server with this slug.")
        return value

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The model's own checks (transport fields, settings-listed stdio command, SecretRef
        credentials), on the row as it would be saved."""
        candidate = MCPServer(**{**self._current(), **attrs})
        try:
            candidate.clean()
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict) from None
        return attrs

    def _current(self) -> dict[str, Any]:
        if self.instance is None:
            return {}
        names = ["transport", "url", "stdio_command", "auth_config", "name"]
        return {name: getattr(self.instance, name) for name in names}


class MCPToolVersionSerializer(serializers.ModelSerializer):
    class Meta:
        model = MCPToolVersion
        fields = ["number", "pin", "definition", "approved_by", "approved_at"]


class MCPToolSerializer(serializers.ModelSerializer):
    server: serializers.SlugRelatedField[MCPServer] = serializers.SlugRelatedField(
        slug_field="slug", read_only=True
    )
    approved_pin = serializers.CharField(read_only=True, allow_null=True)

    class Meta:
        model = MCPTool
        fields = [
            "id", "server", "name", "status", "title", "description", "input_schema",
            "output_schema", "annotations", "live_pin", "approved_pin", "argument_policy",
            "last_seen_at", "created_at", "updated_at",
        ]  # fmt: skip
        read_only_fields = fields


class MCPToolDetailSerializer(MCPToolSerializer):
    versions = MCPToolVersionSerializer(many=True, read_only=True)
    diff = serializers.SerializerMethodField(
        help_text="Field -> unified diff lines of the approved vs the live definition."
    )

    class Meta(MCPToolSerializer.Meta):
        fields = [*MCPToolSerializer.Meta.fields, "versions", "diff"]
        read_only_fields = fields

    def get_diff(self, tool: MCPTool) -> dict[str, list[str]]:
        approved = tool.approved_version.definition if tool.approved_version else None
        return definition_diff(approved, tool.live_definition)


class ApproveSerializer(serializers.Serializer):
    pin = serializers.CharField(
        max_length=64,
        required=False,
        help_text="The live pin you reviewed: refused if the definition changed since.",
    )


class MCPSyncAcceptedSerializer(serializers.Serializer):
    job_id = serializers.UUIDField()
    trace_id = serializers.CharField()
