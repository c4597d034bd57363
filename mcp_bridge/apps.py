"""MCP: servers, tool sync and pinning, tool steps, the platform as an MCP server."""

from django.apps import AppConfig
from django.db.models.signals import post_save


class MCPBridgeConfig(AppConfig):
    name = "mcp_bridge"
    verbose_name = "MCP"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # step types, the agent's "mcp" tool type and outbox handlers register on import
        from automate_core.workflows.models import WorkflowVersion
        from mcp_bridge import agent_tools, steps, tasks  # noqa: F401
        from mcp_bridge.workflow_pins import on_version_saved

        post_save.connect(
            on_version_saved, sender=WorkflowVersion, dispatch_uid="mcp_bridge.workflow_pins"
        )
