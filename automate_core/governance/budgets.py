"""Atomic budgets: reserve before a paid call, settle with what it actually used, or release.

Guarantees:

* :func:`reserve` is all-or-nothing over every budget that applies to the given scopes. Each
  budget is taken with ONE conditional UPDATE (``reserved += amount WHERE spent + reserved +
  amount <= limit``), so concurrent callers in any number of processes can never hold more than
  the limit between them; Postgres serialises the row, Python only orchestrates. If one budget
  refuses, the whole reservation is rolled back and :class:`BudgetExceeded` names it.
* :func:`settle` moves the hold to ``spent`` with the *actual* amount. When the actual amount
  is higher than the reservation, ``spent`` may pass the limit, by at most that one call's
  overrun; the next reservation then refuses. Reserve a safe upper bound to avoid it.
* :func:`release` drops the hold (the call failed or was never made); :func:`release_expired`
  does it for holds whose worker died (run it periodically). A late :func:`settle` of a hold
  the reaper already released still charges the actual usage, so no usage is lost.

Each of settle/release is a compare-and-set on the reservation's status, so a retry, or a race
with the reaper, applies the move once. Budgets are locked in id order to avoid deadlocks
between callers whose scopes overlap.

Periods are UTC. Budgets that apply "now" are the ``total`` row and the ``day``/``month`` row
whose ``period_start`` is the current period's start; a ``day``/``month`` *template* (no
``period_start``) creates that row, with its limits, on first use.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from automate_core.errors import AutomateError
from automate_core.governance.budget_models import Budget, BudgetReservation
from automate_core.tenancy.models import Tenant

__all__ = [
    "BudgetExceeded",
    "Reservation",
    "Scope",
    "current_budgets",
    "period_start",
    "release",
    "release_expired",
    "reserve",
    "settle",
]

Scope = tuple[str, str]  # (scope_type, scope_id), e.g. ("api_key", str(key.pk))

DEFAULT_TTL_SECONDS = 15 * 60


class BudgetExceeded(AutomateError):
    """A budget cannot hold the requested amount; nothing was reserved on any budget."""

    status_code = 402
    code = "budget_exceeded"
    default_message = "The budget for this request is exhausted."

    def __init__(self, budget: Budget, *, tokens: int, cost: Decimal) -> None:
        self.budget = budget
        limits = []
        if budget.limit_tokens is not None:
            limits.append(f"{budget.limit_tokens} tokens")
        if budget.limit_cost is not None:
            limits.append(f"cost {budget.limit_cost}")
        super().__init__(
            f"Budget exceeded for {budget.scope_type} {budget.scope_id!r} "
            f"({budget.period}): limit {', '.join(limits)}",
            details={
                "scope_type": budget.scope_type,
                "scope_id": budget.scope_id,
                "period": budget.period,
                "limit_tokens": budget.limit_tokens,
                "limit_cost": None if budget.limit_cost is None else str(budget.limit_cost),
                "requested_tokens": tokens,
                "requested_cost": str(cost),
            },
        )


@dataclass(frozen=True)
class Reservation:
    """What :func:`reserve` holds: one :class:`BudgetReservation` row per applicable budget.

    Empty ``ids`` means no budget applied (the call is unlimited); settling it is a no-op.
    """

    ref: str
    tokens: int
    cost: Decimal
    ids: tuple[uuid.UUID, ...]


def period_start(period: str, now: dt.datetime | None = None) -> dt.datetime | None:
    """Start (UTC) of the period containing ``now``; ``None`` for ``total``."""
    now = (now or timezone.now()).astimezone(dt.UTC)
    day = now.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == Budget.Period.DAY:
        return day
    if period == Budget.Period.MONTH:
        return day.replace(day=1)
    return None


def current_budgets(
    tenant: Tenant, scopes: Iterable[Scope], *, now: dt.datetime | None = None
) -> list[Budget]:
    """Budgets counting ``now`` for the scopes, in id (lock) order; templates are instantiated."""
    now = now or timezone.now()
    scope_q = Q(pk__in=[])
    for scope_type, scope_id in scopes:
        scope_q |= Q(scope_type=scope_type, scope_id=str(scope_id))
    period_q = (
        Q(period_start__isnull=True)  # total rows and templates
        | Q(period=Budget.Period.DAY, period_start=period_start(Budget.Period.DAY, now))
        | Q(period=Budget.Period.MONTH, period_start=period_start(Budget.Period.MONTH, now))
    )
    rows = list(Budget.objects.for_tenant(tenant).filter(scope_q).filter(period_q))
    found = {b.pk: b for b in rows if b.period == Budget.Period.TOTAL or b.period_start}
    counted = {(b.scope_type, b.scope_id, b.period, b.period_start) for b in found.values()}
    for template in (b for b in rows if b.is_template):
        start = period_start(template.period, now)
        if (template.scope_type, template.scope_id, template.period, start) in counted:
            continue
        budget, _ = Budget.objects.get_or_create(
            tenant_id=template.tenant_id,
            scope_type=template.scope_type,
            scope_id=template.scope_id,
            period=template.period,
            period_start=start,
            defaults={"limit_tokens": template.limit_tokens, "limit_cost": template.limit_cost},
        )
        found[budget.pk] = budget
    return sorted(found.values(), key=lambda b: b.pk)


def reserve(
    tenant: Tenant,
    scopes: Sequence[Scope],
    *,
    tokens: int = 0,
    cost: Decimal | int | str = 0,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ref: str | None = None,
    now: dt.datetime | None = None,
) -> Reservation:
    """Hold ``tokens`` and ``cost`` on every budget of ``scopes``, or raise :class:`BudgetExceeded`.

    ``ref`` is the idempotency key: reserving again with a ref that already holds rows returns
    the existing reservation instead of holding twice. Run in the caller's transaction, a refusal
    rolls back to a savepoint and leaves the caller's other writes alone.
    """
    cost = Decimal(cost)
    if tokens < 0 or cost < 0:
        raise ValueError("a reservation cannot be negative")
    ref = ref or uuid.uuid4().hex
    now = now or timezone.now()
    with transaction.atomic():
        budgets = current_budgets(tenant, scopes, now=now)
        existing = tuple(
            BudgetReservation.objects.filter(budget__in=budgets, ref=ref).values_list(
                "pk", flat=True
            )
        )
        if existing:
            return Reservation(ref=ref, tokens=tokens, cost=cost, ids=existing)
        for budget in budgets:
            taken = (
                Budget.objects.filter(pk=budget.pk)
                .filter(
                    Q(limit_tokens__isnull=True)
                    | Q(limit_tokens__gte=F("spent_tokens") + F("reserved_tokens") + tokens)
                )
                .filter(
                    Q(limit_cost__isnull=True)
                    | Q(limit_cost__gte=F("spent_cost") + F("reserved_cost") + cost)
                )
                .update(
                    reserved_tokens=F("reserved_tokens") + tokens,
                    reserved_cost=F("reserved_cost") + cost,
                    updated_at=now,
                )
            )
            if not taken:
                # Leaving the atomic block by an exception undoes the budgets already taken.
                raise BudgetExceeded(budget, tokens=tokens, cost=cost)
        rows = BudgetReservation.objects.bulk_create(
            BudgetReservation(
                budget=budget,
                ref=ref,
                tokens=tokens,
                cost=cost,
                expires_at=now + dt.timedelta(seconds=ttl_seconds),
            )
            for budget in budgets
        )
    return Reservation(ref=ref, tokens=tokens, cost=cost, ids=tuple(r.pk for r in rows))


def settle(
    reservation: Reservation, *, actual_tokens: int, actual_cost: Decimal | int | str
) -> int:
    """Charge the actual usage and drop the hold; returns how many budgets were charged.

    Settling twice charges once. The actual amount may exceed what was reserved: ``spent`` may
    then pass the limit by that overrun.
    """
    actual_cost = Decimal(actual_cost)
    charged = 0
    with transaction.atomic():
        for row in _rows(reservation):
            was = row.status
            if was == BudgetReservation.Status.SETTLED:
                continue
            moved = BudgetReservation.objects.filter(pk=row.pk, status=was).update(
                status=BudgetReservation.Status.SETTLED,
                actual_tokens=actual_tokens,
                actual_cost=actual_cost,
                updated_at=timezone.now(),
            )
            if not moved:
                continue
            held = was == BudgetReservation.Status.RESERVED
            Budget.objects.filter(pk=row.budget_id).update(
                spent_tokens=F("spent_tokens") + actual_tokens,
                spent_cost=F("spent_cost") + actual_cost,
                reserved_tokens=F("reserved_tokens") - (row.tokens if held else 0),
                reserved_cost=F("reserved_cost") - (row.cost if held else 0),
                updated_at=timezone.now(),
            )
            charged += 1
    return charged


def release(reservation: Reservation) -> int:
    """Drop the hold without charging (the call failed or was not made); returns rows released."""
    with transaction.atomic():
        return sum(_release_row(row) for row in _rows(reservation))


def release_expired(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Release holds past ``expires_at`` (their worker died); returns how many were released."""
    now = now or timezone.now()
    released = 0
    expired = BudgetReservation.objects.filter(
        status=BudgetReservation.Status.RESERVED, expires_at__lt=now
    ).order_by("budget_id")
    for row in expired[:batch]:
        with transaction.atomic():
            released += _release_row(row)
    return released


def _rows(reservation: Reservation) -> list[BudgetReservation]:
    return list(BudgetReservation.objects.filter(pk__in=reservation.ids).order_by("budget_id"))


def _release_row(row: BudgetReservation) -> int:
    moved = BudgetReservation.objects.filter(
        pk=row.pk, status=BudgetReservation.Status.RESERVED
    ).update(status=BudgetReservation.Status.RELEASED, updated_at=timezone.now())
    if moved:
        Budget.objects.filter(pk=row.budget_id).update(
            reserved_tokens=F("reserved_tokens") - row.tokens,
            reserved_cost=F("reserved_cost") - row.cost,
            updated_at=timezone.now(),
        )
    return moved
