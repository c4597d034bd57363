"""``/api/v1/`` for the core app; other apps add their routes under their own prefixes."""

from django.urls import path

from automate_core.api.routers import OptionalSlashRouter
from automate_core.api.tenancy import APIKeyViewSet, CurrentTenantView

router = OptionalSlashRouter()
router.register("api-keys", APIKeyViewSet, basename="api-key")

urlpatterns = [
    path("tenant", CurrentTenantView.as_view(), name="current-tenant"),
    *router.urls,
]
