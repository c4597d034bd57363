"""MCP: servers, tool sync and pinning, tool steps, the platform as an MCP server."""

from django.apps import AppConfig


class MCPBridgeConfig(AppConfig):
    name = "mcp_bridge"
    verbose_name = "MCP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from mcp_bridge import steps, tasks  # noqa: F401  step types and outbox handlers
