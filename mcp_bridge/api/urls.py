"""``/api/v1/mcp/``: servers and tools."""

from django.urls import URLPattern, URLResolver

from automate_core.api.routers import OptionalSlashRouter
from mcp_bridge.api.views import MCPServerViewSet, MCPToolViewSet

router = OptionalSlashRouter()
router.register("servers", MCPServerViewSet, basename="mcp-server")
router.register("tools", MCPToolViewSet, basename="mcp-tool")

urlpatterns: list[URLPattern | URLResolver] = [*router.urls]
