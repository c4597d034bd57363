from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from automate_core.api import health
from automate_core.api.errors import json_404_or_html, json_500_or_html

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include("automate_core.api.urls")),
    path("api/v1/llm/", include("automate_llm.api.urls")),
    path("api/v1/rag/", include("rag.api.urls")),
    path("api/v1/mcp/", include("mcp_bridge.api.urls")),
    path("", include("widgets.urls")),
    path("api/v1/modal/", include("automate_modal.api.urls")),
    path("api/v1/datachat/", include("automate_datachat.api.urls")),
    path("healthz", health.healthz, name="healthz"),
    path("readyz", health.readyz, name="readyz"),
]

handler404 = json_404_or_html
handler500 = json_500_or_html
