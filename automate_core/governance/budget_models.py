"""Budget and BudgetReservation: spending limits on tokens and cost, and the holds against them.

A budget row covers one scope (a tenant, an API key, an end user or a workflow) for one period.
``period_start`` is the start of the period the row counts (UTC midnight for ``day``, the 1st of
the month for ``month``). A ``day``/``month`` row without ``period_start`` is a *template*: it
counts nothing itself, and the row of the current period is created from it on first use.
A ``total`` row has no ``period_start`` and never resets.

``spent + reserved`` never exceeds a limit at the moment of a reservation; the moves between
the counters live in :mod:`automate_core.governance.budgets` as single conditional UPDATEs.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import models
from django.db.models import Q

from automate_core.base import TenantManager, TimeStampedModel, UUIDModel

# Money: 12 digits before the point, 6 after (fractions of a cent per token add up).
MAX_DIGITS, DECIMAL_PLACES = 18, 6


class Budget(UUIDModel, TimeStampedModel):
    class ScopeType(models.TextChoices):
        TENANT = "tenant"
        API_KEY = "api_key", "API key"
        END_USER = "end_user", "end user"
        WORKFLOW = "workflow"

    class Period(models.TextChoices):
        DAY = "day"
        MONTH = "month"
        TOTAL = "total"

    tenant = models.ForeignKey(
        "automate_core.Tenant", on_delete=models.CASCADE, related_name="budgets"
    )
    scope_type = models.CharField(max_length=16, choices=ScopeType.choices)
    scope_id = models.CharField(
        max_length=200, help_text="Id of the API key, end user or workflow; the tenant's id."
    )
    period = models.CharField(max_length=8, choices=Period.choices)
    period_start = models.DateTimeField(
        null=True,
        blank=True,
        help_text="Start of the counted period (UTC). Empty: a template (day/month) or total.",
    )
    limit_tokens = models.BigIntegerField(null=True, blank=True, help_text="Empty: no limit.")
    limit_cost = models.DecimalField(
        max_digits=MAX_DIGITS,
        decimal_places=DECIMAL_PLACES,
        null=True,
        blank=True,
        help_text="Empty: no limit.",
    )
    spent_tokens = models.BigIntegerField(default=0, editable=False)
    spent_cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, default=Decimal(0), editable=False
    )
    reserved_tokens = models.BigIntegerField(default=0, editable=False)
    reserved_cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, default=Decimal(0), editable=False
    )

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "scope_type", "scope_id", "period", "period_start"],
                nulls_distinct=False,
                name="budget_one_row_per_scope_period",
            ),
            models.CheckConstraint(
                condition=Q(reserved_tokens__gte=0) & Q(reserved_cost__gte=0),
                name="budget_reserved_not_negative",
            ),
        ]
        indexes = [models.Index(fields=["tenant", "scope_type", "scope_id"])]

    def __str__(self) -> str:
        start = self.period_start.date().isoformat() if self.period_start else "template"
        period = self.period if self.period == self.Period.TOTAL else f"{self.period} {start}"
        return f"{self.scope_type}:{self.scope_id} ({period})"

    @property
    def is_template(self) -> bool:
        return self.period != self.Period.TOTAL and self.period_start is None


class BudgetReservation(UUIDModel, TimeStampedModel):
    """A hold of ``tokens``/``cost`` on one budget, until settled, released or expired.

    ``expires_at`` bounds how long a dead worker's hold can block others: the reaper
    (:func:`~automate_core.governance.budgets.release_expired`) releases it after that.
    """

    class Status(models.TextChoices):
        RESERVED = "reserved"
        SETTLED = "settled"
        RELEASED = "released"

    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="reservations")
    ref = models.CharField(
        max_length=200, db_index=True, help_text="Caller's reference; also the idempotency key."
    )
    tokens = models.BigIntegerField(default=0)
    cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, default=Decimal(0)
    )
    actual_tokens = models.BigIntegerField(null=True, blank=True)
    actual_cost = models.DecimalField(
        max_digits=MAX_DIGITS, decimal_places=DECIMAL_PLACES, null=True, blank=True
    )
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RESERVED)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["budget", "ref"], name="budget_reservation_unique_ref")
        ]

    def __str__(self) -> str:
        return f"{self.ref} on {self.budget_id} ({self.status})"
