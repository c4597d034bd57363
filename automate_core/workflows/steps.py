"""What an app needs to contribute workflow steps: one import for step types and the helpers
that attribute a step's work to its run.

An app registers a graph step type with :func:`register_step_type` (in its ``AppConfig.ready``)
and, inside the step, finds its tenant with :func:`step_tenant` and what to attribute metered
calls, audit rows and idempotent requests to with :func:`attribution`. A code-first ``@step``
gets the same through :func:`current_step_call`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from automate_core.errors import AutomateError, InvalidInputError
from automate_core.executions.services import add_usage, workflow_name_of
from automate_core.tenancy.models import Tenant
from automate_core.workflows.compiled import StepCall, StepResult, current_step_call
from automate_core.workflows.graph import Node, Problem, StepType, register_step_type
from automate_core.workflows.templating import render_value

__all__ = [
    "Node",
    "Problem",
    "StepAttribution",
    "StepCall",
    "StepResult",
    "StepType",
    "add_usage",
    "attribution",
    "current_step_call",
    "register_step_type",
    "render_value",
    "step_tenant",
]


@dataclass(frozen=True)
class StepAttribution:
    """Who a step's work is for: its run and step, the workflow (a budget scope), the trace,
    and the idempotency key to send with each outside call (stable across the step's retries)."""

    execution_id: uuid.UUID | None
    step_id: str
    workflow: str
    idempotency_key: str
    trace_id: str


def attribution(call: StepCall, *, key_suffix: str = "") -> StepAttribution:
    """The attribution of work done by the step ``call``. A step that makes several outside
    calls gives each its own ``key_suffix`` so each keeps a distinct, stable idempotency key."""
    return StepAttribution(
        execution_id=uuid.UUID(str(call.execution_id)) if call.execution_id else None,
        step_id=call.step_id,
        workflow=workflow_name_of(call.execution_id),
        idempotency_key=call.idempotency_key + key_suffix,
        trace_id=call.trace_id or "",
    )


def step_tenant(call: StepCall, *, missing: AutomateError | None = None) -> Tenant:
    """The tenant the running step's run belongs to; ``missing`` (by default an
    ``invalid_input`` error) is raised for a run with none."""
    tenant = Tenant.objects.filter(pk=call.tenant_id).first() if call.tenant_id else None
    if tenant is None:
        raise missing or InvalidInputError("this step needs a run that belongs to a tenant")
    return tenant
