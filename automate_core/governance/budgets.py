"""Atomic budgets: reserve before a paid call, settle with what it actually used, or release.

Guarantees:

* :func:`reserve` is all-or-nothing over every budget that applies to the given scopes, and
  concurrent callers in any number of processes can never hold more than a limit between them:
  Postgres serialises the rows, Python only orchestrates. It is ONE statement: it locks the
  budgets in id order, checks ``spent + reserved + amount <= limit`` on each locked row, and
  only if every one has room adds the hold to all of them and writes the reservation rows; a
  refusal changes nothing, so it needs no transaction or savepoint of its own.
  :class:`BudgetExceeded` names a budget that refused.
* :func:`settle` moves the hold to ``spent`` with the *actual* amount. When the actual amount
  is higher than the reservation, ``spent`` may pass the limit, by at most that one call's
  overrun; the next reservation then refuses. Reserve a safe upper bound to avoid it.
* :func:`release` drops the hold (the call failed or was never made); :func:`release_expired`
  does it for holds whose worker died (run it periodically). A late :func:`settle` of a hold
  the reaper already released still charges the actual usage, so no usage is lost.

Each of settle/release is a compare-and-set on the reservation's status, so a retry, or a race
with the reaper, applies the move once. Budgets are locked in id order to avoid deadlocks
between callers whose scopes overlap.

A reservation made outside any transaction commits on its own, before the paid call, so other
callers see the hold at once. That commit does not wait for its WAL flush (``synchronous_commit
= off`` for that one statement): a hold only matters while its caller is connected, and the
caller's next write (its settle, or the record of the call) is flushed with it, since the WAL is
flushed in order. A database crash in between breaks the caller's connection, so that call could
be neither settled nor recorded whether or not its hold had been flushed. Settles, releases and
anything run in a caller's transaction keep the ordinary, flushed commit.

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

from django.db import connection, transaction
from django.db.models import F
from django.utils import timezone

from automate_core import prepared
from automate_core.errors import AutomateError
from automate_core.governance.models import Budget, BudgetReservation
from automate_core.prepared import Columns
from automate_core.tenancy.models import Tenant

__all__ = [
    "BudgetExceeded",
    "Reservation",
    "Scope",
    "current_budgets",
    "open_hold",
    "period_start",
    "release",
    "release_expired",
    "reserve",
    "settle",
]

Scope = tuple[str, str]  # (scope_type, scope_id), e.g. ("api_key", str(key.pk))

DEFAULT_TTL_SECONDS = 15 * 60

RESERVED = BudgetReservation.Status.RESERVED
SETTLED = BudgetReservation.Status.SETTLED


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
    """Budgets counting ``now`` for the scopes, in id (lock) order; templates are instantiated.

    One query (a prepared statement on Postgres) when every period row already exists.
    """
    now = now or timezone.now()
    scopes = [(scope_type, str(scope_id)) for scope_type, scope_id in scopes]
    rows = _budget_rows(tenant, scopes, now) if scopes else []
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


def open_hold(budgets: Sequence[Budget], ref_prefix: str) -> str | None:
    """The ref of a hold still open (reserved) on ``budgets`` whose ref starts with
    ``ref_prefix``, if there is one: how a caller finds the hold of a call it restarts.

    A prepared statement that reads the ref index's prefix range.
    """
    if not budgets or not ref_prefix:
        return None
    # The prefix as a range of the ref index (byte order, as varchar_pattern_ops sorts): usable
    # by the prepared statement's generic plan, where a LIKE pattern is not.
    upper = ref_prefix[:-1] + chr(ord(ref_prefix[-1]) + 1)
    with prepared.cursor() as cursor:
        cursor.execute(
            _OPEN_HOLD_SQL, {"low": ref_prefix, "high": upper, "budgets": [b.pk for b in budgets]}
        )
        row = cursor.fetchone()
    return row[0] if row else None


def reserve(
    tenant: Tenant,
    scopes: Sequence[Scope],
    *,
    tokens: int = 0,
    cost: Decimal | int | str = 0,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    ref: str | None = None,
    now: dt.datetime | None = None,
    applicable: Sequence[Budget] | None = None,
) -> Reservation:
    """Hold ``tokens`` and ``cost`` on every budget of ``scopes``, or raise :class:`BudgetExceeded`.

    ``ref`` is the idempotency key: reserving again with a ref that already holds rows returns
    the existing reservation instead of holding twice. ``applicable`` is what
    :func:`current_budgets` returned for these scopes, when the caller already looked them up.
    Run in the caller's transaction, a refusal leaves the caller's other writes alone.
    """
    cost = Decimal(cost)
    if tokens < 0 or cost < 0:
        raise ValueError("a reservation cannot be negative")
    ref = ref or uuid.uuid4().hex
    now = now or timezone.now()
    if applicable is None:
        applicable = current_budgets(tenant, scopes, now=now)
    if not applicable:
        return Reservation(ref=ref, tokens=tokens, cost=cost, ids=())
    hold = _Hold(
        ref=ref, tokens=tokens, cost=cost, expires_at=now + dt.timedelta(seconds=ttl_seconds)
    )
    return _reserve_in_one_statement(list(applicable), hold, now)


def settle(
    reservation: Reservation, *, actual_tokens: int, actual_cost: Decimal | int | str
) -> int:
    """Charge the actual usage and drop the hold; returns how many budgets were charged.

    Settling twice charges once. The actual amount may exceed what was reserved: ``spent`` may
    then pass the limit by that overrun. One statement.
    """
    actual_cost = Decimal(actual_cost)
    if not reservation.ids:
        return 0
    now = timezone.now()
    with prepared.cursor() as cursor:
        cursor.execute(
            _SETTLE_SQL,
            {
                "ids": list(reservation.ids),
                "tokens": actual_tokens,
                "cost": actual_cost,
                "now": now,
            },
        )
        return cursor.rowcount


def release(reservation: Reservation) -> int:
    """Drop the hold without charging (the call failed or was not made); returns rows released."""
    if not reservation.ids:
        return 0
    with transaction.atomic():
        return sum(_release_row(row) for row in _rows(reservation))


def release_expired(*, now: dt.datetime | None = None, batch: int = 500) -> int:
    """Release holds past ``expires_at`` (their worker died); returns how many were released."""
    now = now or timezone.now()
    released = 0
    expired = BudgetReservation.objects.filter(status=RESERVED, expires_at__lt=now).order_by(
        "budget_id"
    )
    for row in expired[:batch]:
        with transaction.atomic():
            released += _release_row(row)
    return released


# -- internals ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Hold:
    ref: str
    tokens: int
    cost: Decimal
    expires_at: dt.datetime


_BUDGET = Budget._meta.db_table
_RESERVATION = BudgetReservation._meta.db_table
_BUDGET_COLUMNS = Columns(Budget._meta.concrete_fields)

_BUDGETS_SQL = f"""
SELECT {_BUDGET_COLUMNS.names} FROM {_BUDGET}
WHERE tenant_id = %(tenant)s::uuid
  AND (scope_type, scope_id) IN (SELECT * FROM unnest(%(types)s::text[], %(ids)s::text[]))
  AND (period_start IS NULL
       OR (period = 'day' AND period_start = %(day)s::timestamptz)
       OR (period = 'month' AND period_start = %(month)s::timestamptz))
"""  # noqa: S608 (constants)

_OPEN_HOLD_SQL = f"""
SELECT ref FROM {_RESERVATION}
WHERE ref::text ~>=~ %(low)s::text AND ref::text ~<~ %(high)s::text
  AND budget_id = ANY(%(budgets)s::uuid[]) AND status = '{RESERVED}'
LIMIT 1
"""  # noqa: S608 (constants)

# The whole reservation in one statement. ``locked`` takes the budgets' row locks in id order
# (no deadlock between callers whose scopes overlap) and, as SELECT ... FOR UPDATE re-reads a
# row another transaction changed meanwhile, checks the room on the newest version of each.
# ``taken`` adds the hold only when every budget has room, so a refusal changes nothing. A ref
# that already holds rows on these budgets locks nothing and returns those rows.
_RESERVE_SQL = f"""
WITH durability AS MATERIALIZED (
    SELECT set_config(
        'synchronous_commit',
        coalesce(%(synchronous_commit)s::text, current_setting('synchronous_commit')),
        true
    ) AS mode
), existing AS MATERIALIZED (
    SELECT id, budget_id FROM {_RESERVATION}
    WHERE ref = %(ref)s::text AND budget_id = ANY(%(budgets)s::uuid[])
), locked AS MATERIALIZED (
    SELECT id,
           (limit_tokens IS NULL
            OR limit_tokens >= spent_tokens + reserved_tokens + %(tokens)s::bigint)
           AND (limit_cost IS NULL
                OR limit_cost >= spent_cost + reserved_cost + %(cost)s::numeric) AS fits
    FROM {_BUDGET}
    WHERE id = ANY(%(budgets)s::uuid[])
      AND NOT EXISTS (SELECT 1 FROM existing)
      AND (SELECT mode IS NOT NULL FROM durability)
    ORDER BY id
    FOR UPDATE
), verdict AS (
    SELECT count(*) FILTER (WHERE fits) = cardinality(%(budgets)s::uuid[]) AS ok FROM locked
), taken AS (
    UPDATE {_BUDGET}
    SET reserved_tokens = reserved_tokens + %(tokens)s::bigint,
        reserved_cost = reserved_cost + %(cost)s::numeric,
        updated_at = %(now)s::timestamptz
    WHERE id = ANY(%(budgets)s::uuid[]) AND (SELECT ok FROM verdict)
    RETURNING id
), held AS (
    INSERT INTO {_RESERVATION}
        (id, created_at, updated_at, budget_id, ref, tokens, cost, status, expires_at)
    SELECT gen_random_uuid(), %(now)s::timestamptz, %(now)s::timestamptz, id, %(ref)s::text,
           %(tokens)s::bigint, %(cost)s::numeric, '{RESERVED}', %(expires_at)s::timestamptz
    FROM taken
    RETURNING id, budget_id
)
SELECT 'existing', id, budget_id FROM existing
UNION ALL SELECT 'held', id, budget_id FROM held
UNION ALL SELECT 'refused', NULL, id FROM locked WHERE NOT fits
"""  # noqa: S608 (constants)

# Settle every row of a reservation in one statement: the reservation rows are locked first
# (their status read after any concurrent release), then their budgets in id order, as every
# other move takes them; a row already settled is skipped, so settling twice charges once.
_SETTLE_SQL = f"""
WITH moving AS MATERIALIZED (
    SELECT id, budget_id, status AS was, tokens, cost FROM {_RESERVATION}
    WHERE id = ANY(%(ids)s::uuid[]) AND status <> '{SETTLED}'
    ORDER BY budget_id
    FOR UPDATE
), budgets AS MATERIALIZED (
    SELECT id FROM {_BUDGET} WHERE id IN (SELECT budget_id FROM moving) ORDER BY id FOR UPDATE
), moved AS (
    UPDATE {_RESERVATION} AS r
    SET status = '{SETTLED}', actual_tokens = %(tokens)s::bigint,
        actual_cost = %(cost)s::numeric, updated_at = %(now)s::timestamptz
    FROM moving WHERE r.id = moving.id
)
UPDATE {_BUDGET} AS b
SET spent_tokens = b.spent_tokens + %(tokens)s::bigint,
    spent_cost = b.spent_cost + %(cost)s::numeric,
    reserved_tokens = b.reserved_tokens
        - CASE WHEN moving.was = '{RESERVED}' THEN moving.tokens ELSE 0 END,
    reserved_cost = b.reserved_cost
        - CASE WHEN moving.was = '{RESERVED}' THEN moving.cost ELSE 0 END,
    updated_at = %(now)s::timestamptz
FROM moving
WHERE b.id = moving.budget_id AND (SELECT count(*) FROM budgets) > 0
"""  # noqa: S608 (constants)


def _budget_rows(tenant: Tenant, scopes: list[Scope], now: dt.datetime) -> list[Budget]:
    day, month = period_start(Budget.Period.DAY, now), period_start(Budget.Period.MONTH, now)
    with prepared.cursor() as cursor:
        cursor.execute(
            _BUDGETS_SQL,
            {
                "tenant": tenant.pk,
                "types": [scope_type for scope_type, _ in scopes],
                "ids": [scope_id for _, scope_id in scopes],
                "day": day,
                "month": month,
            },
        )
        return [_BUDGET_COLUMNS.instance(Budget, row) for row in cursor.fetchall()]


def _reserve_in_one_statement(
    applicable: list[Budget], hold: _Hold, now: dt.datetime
) -> Reservation:
    # Outside a transaction the statement is its own transaction: see the module docstring for
    # why its commit need not wait for the flush. Inside one, the caller's commit is untouched.
    own_commit = connection.get_autocommit()
    with prepared.cursor() as cursor:
        cursor.execute(
            _RESERVE_SQL,
            {
                "synchronous_commit": "off" if own_commit else None,
                "budgets": [b.pk for b in applicable],
                "ref": hold.ref,
                "tokens": hold.tokens,
                "cost": hold.cost,
                "now": now,
                "expires_at": hold.expires_at,
            },
        )
        rows = cursor.fetchall()
    ids = tuple(row[1] for row in sorted(rows, key=lambda row: row[2]) if row[0] != "refused")
    if ids:
        return Reservation(ref=hold.ref, tokens=hold.tokens, cost=hold.cost, ids=ids)
    refused = {row[2] for row in rows if row[0] == "refused"}
    budget = next((b for b in applicable if b.pk in refused), applicable[0])
    raise BudgetExceeded(budget, tokens=hold.tokens, cost=hold.cost)


def _rows(reservation: Reservation) -> list[BudgetReservation]:
    return list(BudgetReservation.objects.filter(pk__in=reservation.ids).order_by("budget_id"))


def _release_row(row: BudgetReservation) -> int:
    moved = BudgetReservation.objects.filter(pk=row.pk, status=RESERVED).update(
        status=BudgetReservation.Status.RELEASED, updated_at=timezone.now()
    )
    if moved:
        Budget.objects.filter(pk=row.budget_id).update(
            reserved_tokens=F("reserved_tokens") - row.tokens,
            reserved_cost=F("reserved_cost") - row.cost,
            updated_at=timezone.now(),
        )
    return moved
