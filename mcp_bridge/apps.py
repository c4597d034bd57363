from django.apps import AppConfig


class MCPBridgeConfig(AppConfig):
    name = "mcp_bridge"
    default_auto_field = "django.db.models.BigAutoField"
