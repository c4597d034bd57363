"""``/api/v1/`` for the core app; other apps add their routes under their own prefixes."""

from django.urls import path

from automate_core.api.budgets import BudgetViewSet
from automate_core.api.routers import OptionalSlashRouter
from automate_core.api.runtime import EventViewSet, ExecutionViewSet, RuleDryRunView, WebhookView
from automate_core.api.tenancy import APIKeyViewSet, CurrentTenantView
from automate_core.api.webhook_sources import WebhookSourceViewSet
from automate_core.api.workflows import AutomationViewSet, TriggerViewSet, WorkflowVersionViewSet

router = OptionalSlashRouter()
router.register("api-keys", APIKeyViewSet, basename="api-key")
router.register("events", EventViewSet, basename="event")
router.register("executions", ExecutionViewSet, basename="execution")
router.register("budgets", BudgetViewSet, basename="budget")
router.register("automations", AutomationViewSet, basename="automation")
router.register(
    r"automations/(?P<automation>[^/.]+)/versions",
    WorkflowVersionViewSet,
    basename="workflow-version",
)
router.register("triggers", TriggerViewSet, basename="trigger")
router.register("webhook-sources", WebhookSourceViewSet, basename="webhook-source")

urlpatterns = [
    path("tenant", CurrentTenantView.as_view(), name="current-tenant"),
    path("webhooks/<slug:source>", WebhookView.as_view(), name="webhook"),
    path("rules/dry-run", RuleDryRunView.as_view(), name="rule-dry-run"),
    *router.urls,
]
