"""The governance models: the audit log, budgets and the holds against them, stored secrets.

The operations on them live beside them: :mod:`~automate_core.governance.audit` (record,
verify), :mod:`~automate_core.governance.budgets` (reserve, settle, release) and
:mod:`~automate_core.governance.stored_secrets` (write, rotate, the ``db`` backend).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import uuid
from decimal import Decimal
from typing import TYPE_CHECKING, Any, NoReturn

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import models
from django.db.models import Q

from automate_core.base import TenantManager, TenantQuerySet, TimeStampedModel, UUIDModel
from automate_core.errors import AutomateError, ConflictError
from automate_core.governance.secret_keys import fernet, key_ids

if TYPE_CHECKING:
    from automate_core.governance.audit import RowVerdict

# Money: 12 digits before the point, 6 after (fractions of a cent per token add up).
MAX_DIGITS, DECIMAL_PLACES = 18, 6


# -- audit log -----------------------------------------------------------------------------------


class AuditLogAppendOnly(ConflictError):
    """Audit rows are written once and never changed or deleted."""

    code = "audit_log_append_only"
    default_message = "Audit log rows cannot be changed or deleted."


class AuditLogQuerySet(TenantQuerySet):
    def update(self, **kwargs: Any) -> NoReturn:
        raise AuditLogAppendOnly()

    def delete(self) -> NoReturn:
        raise AuditLogAppendOnly()


AuditLogManager = models.Manager.from_queryset(AuditLogQuerySet)


class AuditLog(models.Model):
    """Who (``actor``) did what (``action``) to which thing (``target``), and when.

    ``actor`` is ``"user:<id>"``, ``"api_key:<prefix>"`` or ``"system"``; ``action`` is
    ``<kind>.<verb>`` (``workflow.publish``, ``secret.write``, ``api_key.create``,
    ``budget.change``, ``ai.call``). The tenant is kept as a bare id so rows outlive it.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    seq = models.PositiveBigIntegerField(unique=True, editable=False)
    created_at = models.DateTimeField(editable=False, db_index=True)
    tenant = models.ForeignKey(
        "automate_core.Tenant",
        null=True,
        blank=True,
        on_delete=models.DO_NOTHING,
        db_constraint=False,
        related_name="+",
    )
    actor = models.CharField(max_length=200)
    action = models.CharField(max_length=100, db_index=True)
    target = models.CharField(max_length=300, blank=True)
    data = models.JSONField(default=dict, blank=True)
    trace_id = models.CharField(max_length=64, blank=True)
    prev_hash = models.CharField(max_length=64, editable=False)
    hash = models.CharField(max_length=64, editable=False)

    objects = AuditLogManager()

    #: Not a column: the verdict of :func:`verify_rows` on a row being displayed (the admin).
    chain_verdict: RowVerdict | None = None

    class Meta:
        ordering = ["-seq"]
        indexes = [models.Index(fields=["tenant", "action"])]

    def __str__(self) -> str:
        return f"{self.actor} {self.action} {self.target}".strip()

    def save(self, *args: Any, **kwargs: Any) -> None:
        if not self._state.adding:
            raise AuditLogAppendOnly()
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise AuditLogAppendOnly()

    def content(self) -> dict[str, Any]:
        """What the hash covers: every column but ``hash`` itself."""
        return {
            "id": str(self.id),
            "seq": self.seq,
            "created_at": self.created_at.astimezone(dt.UTC).isoformat(),
            "tenant_id": None if self.tenant_id is None else str(self.tenant_id),
            "actor": self.actor,
            "action": self.action,
            "target": self.target,
            "data": self.data,
            "trace_id": self.trace_id,
        }

    def compute_hash(self) -> str:
        canonical = json.dumps(
            self.content(), sort_keys=True, separators=(",", ":"), ensure_ascii=False
        )
        return hashlib.sha256((self.prev_hash + canonical).encode()).hexdigest()


# -- budgets -------------------------------------------------------------------------------------


class Budget(UUIDModel, TimeStampedModel):
    """Spending limits on tokens and cost for one scope (a tenant, an API key, an end user or a
    workflow) for one period.

    ``period_start`` is the start of the period the row counts (UTC midnight for ``day``, the 1st
    of the month for ``month``). A ``day``/``month`` row without ``period_start`` is a
    *template*: it counts nothing itself, and the row of the current period is created from it on
    first use. A ``total`` row has no ``period_start`` and never resets.

    ``spent + reserved`` never exceeds a limit at the moment of a reservation; the moves between
    the counters live in :mod:`automate_core.governance.budgets` as single conditional UPDATEs.
    """

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


# -- stored secrets ------------------------------------------------------------------------------


class SecretDecryptionError(AutomateError):
    """A stored secret cannot be decrypted with any configured key (a key was dropped early)."""

    status_code = 500
    code = "secret_decryption_failed"
    default_message = "A stored secret could not be decrypted."


class StoredSecret(UUIDModel, TimeStampedModel):
    """One encrypted value; ``tenant`` empty means global (visible to every tenant)."""

    tenant = models.ForeignKey(
        "automate_core.Tenant", null=True, blank=True, on_delete=models.CASCADE, related_name="+"
    )
    name = models.CharField(max_length=256)
    ciphertext = models.TextField(editable=False)
    key_id = models.CharField(
        max_length=16, editable=False, help_text="Fingerprint of the key that encrypted it."
    )
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )

    objects = TenantManager()

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["tenant", "name"],
                nulls_distinct=False,
                name="stored_secret_name_per_tenant",
            )
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.tenant_id or 'global'})"

    def encrypt(self, value: str) -> None:
        """Encrypt ``value`` with the newest key into this (unsaved) row."""
        self.ciphertext = fernet().encrypt(value.encode()).decode()
        self.key_id = key_ids()[0]

    def decrypt(self) -> str:
        try:
            return fernet().decrypt(self.ciphertext.encode()).decode()
        except InvalidToken:
            raise SecretDecryptionError(
                f"secret {self.name!r} (key {self.key_id}) cannot be decrypted with the "
                "configured SECRET_KEYS"
            ) from None
