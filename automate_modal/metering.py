"""GPU time against the governance budgets: hold the worst case before an attempt spawns,
charge what it used when it ends.

Each attempt of a job holds ``timeout x price of its GPU`` on every budget of the job's scopes
(the tenant, and the API key or the workflow that started it) before the function is spawned;
:class:`~automate_core.governance.budgets.BudgetExceeded` then means nothing was spawned. When
the attempt ends, whatever its outcome, the hold is settled to the seconds it ran times the
price (the GPU was paid for either way); an attempt that never started releases its hold. The
hold outlives the timeout by ``TIMEOUT_GRACE_SECONDS`` plus an hour, so the budget reaper does
not drop it under a running call.
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from automate_core.governance import budgets
from automate_core.governance.budgets import Reservation, Scope
from automate_modal.conf import modal_settings
from automate_modal.models import ModalJob
from automate_modal.pricing import GPUPrice, price_for

_HOLD_MARGIN_SECONDS = 3600


def scopes_for(tenant_id: Any, *, api_key_id: Any = None, workflow: str = "") -> list[Scope]:
    scopes: list[Scope] = [("tenant", str(tenant_id))]
    if api_key_id:
        scopes.append(("api_key", str(api_key_id)))
    if workflow:
        scopes.append(("workflow", workflow))
    return scopes


def hold(job: ModalJob, gpu: str, attempt: int) -> dict[str, Any]:
    """Reserve the attempt's worst case; the hold as stored on the attempt. Raises
    ``BudgetExceeded`` when a budget cannot hold it (nothing is held then)."""
    price = price_for(gpu)
    worst = price.cost(job.endpoint.timeout)
    ttl = job.endpoint.timeout + int(modal_settings.TIMEOUT_GRACE_SECONDS) + _HOLD_MARGIN_SECONDS
    reservation = budgets.reserve(
        job.tenant,
        [(kind, scope_id) for kind, scope_id in job.budget_scopes],
        cost=worst,
        ref=f"modal:{job.pk}:{attempt}",
        ttl_seconds=ttl,
    )
    return {
        "ref": reservation.ref,
        "cost": str(reservation.cost),
        "ids": [str(i) for i in reservation.ids],
    }


def _reservation(stored: dict[str, Any]) -> Reservation:
    return Reservation(
        ref=stored["ref"],
        tokens=0,
        cost=Decimal(stored["cost"]),
        ids=tuple(uuid.UUID(i) for i in stored["ids"]),
    )


def charge(stored: dict[str, Any] | None, price: GPUPrice, seconds: float) -> Decimal:
    """Settle the hold to ``seconds`` of the GPU; returns the cost."""
    cost = price.cost(seconds)
    if stored:
        budgets.settle(_reservation(stored), actual_tokens=0, actual_cost=cost)
    return cost


def release(stored: dict[str, Any] | None) -> None:
    if stored:
        budgets.release(_reservation(stored))
