"""Models of the core app; each lives in the subpackage that owns it."""

from automate_core.connectors.models import ConnectionProfile
from automate_core.events.models import Event, WebhookSource
from automate_core.executions.models import Execution, StepRun
from automate_core.governance.models import AuditLog, Budget, BudgetReservation, StoredSecret
from automate_core.outbox.models import OutboxJob
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.workflows.models import Automation, WorkflowVersion

__all__ = [
    "APIKey",
    "AuditLog",
    "Automation",
    "Budget",
    "BudgetReservation",
    "ConnectionProfile",
    "Event",
    "Execution",
    "OutboxJob",
    "StepRun",
    "StoredSecret",
    "Tenant",
    "TenantMembership",
    "Trigger",
    "WebhookSource",
    "WorkflowVersion",
]
