"""The audit log: an append-only, hash-chained record of configuration changes.

Guarantees:

* Rows are never changed or deleted through Django: ``save()`` of an existing row,
  ``delete()`` and queryset ``update()``/``delete()`` raise :class:`AuditLogAppendOnly`.
* Each row stores ``hash = sha256(prev_hash + canonical JSON of its content)`` and the previous
  row's hash, in insertion order (``seq``). Writers take a Postgres transaction-level advisory
  lock before reading the chain's head, so concurrent writers in any number of processes keep
  one chain; the lock is released when the writer's transaction ends.
* :func:`verify_chain` recomputes the chain and names the first row whose content, or whose
  link to the row before it, no longer matches: a row changed or deleted with raw SQL is
  found. Deleting the *newest* rows leaves a shorter valid chain; keep the head hash
  elsewhere (a log line, a ticket) if that matters. :func:`verify_rows` checks just some rows
  (an admin page), each against its own content and the row before it, with one query.
* ``data`` goes through the project's redactor before it is hashed and stored, so no
  credential reaches the log.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import connections, router, transaction

from automate_core.governance.models import AuditLog
from automate_core.governance.redaction import redact
from automate_core.tracing import current_trace_id

if TYPE_CHECKING:
    from django.http import HttpRequest

    from automate_core.tenancy.models import Tenant

__all__ = [
    "ChainVerification",
    "RowVerdict",
    "actor_for_request",
    "record",
    "verify_chain",
    "verify_rows",
]

GENESIS_HASH = "0" * 64
# Key of the advisory lock that serialises writers (any constant unique to this chain).
_LOCK_KEY = 0x61756469745F6C67  # "audit_lg"


def record(
    action: str,
    *,
    actor: str,
    tenant: Tenant | None = None,
    target: str = "",
    data: Any = None,
) -> AuditLog:
    """Append one row to the chain, inside the caller's transaction if there is one.

    ``data`` is redacted, then normalised through JSON (what is hashed is what is read back).
    The chain's head is read under ``pg_advisory_xact_lock``, held until the caller's
    transaction ends, so concurrent writers append one after another.
    """
    payload = json.loads(json.dumps(redact(data if data is not None else {}), default=str))
    using = router.db_for_write(AuditLog)
    with transaction.atomic(using=using):
        with connections[using].cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [_LOCK_KEY])
        head = AuditLog.objects.using(using).order_by("-seq").values("seq", "hash").first()
        entry = AuditLog(
            seq=head["seq"] + 1 if head else 1,
            created_at=dt.datetime.now(dt.UTC),
            tenant=tenant,
            actor=actor,
            action=action,
            target=target,
            data=payload,
            trace_id=current_trace_id() or "",
            prev_hash=head["hash"] if head else GENESIS_HASH,
        )
        entry.hash = entry.compute_hash()
        entry.save(using=using, force_insert=True)
    return entry


@dataclass(frozen=True)
class ChainVerification:
    """The outcome of :func:`verify_chain`; ``broken_id`` is the first row that fails."""

    ok: bool
    checked: int
    broken_id: uuid.UUID | None = None
    reason: str = ""

    def __str__(self) -> str:
        if self.ok:
            return f"Audit chain OK: {self.checked} row(s) verified."
        return (
            f"Audit chain BROKEN at row {self.broken_id} ({self.reason}); {self.checked} checked."
        )


def verify_chain(
    *, progress: Callable[[int, int], None] | None = None, chunk_size: int = 2000
) -> ChainVerification:
    """Recompute every row's hash in insertion order; stops at the first broken row.

    A row is broken when its own content does not give its stored hash (it was edited), or
    its ``prev_hash`` is not the hash of the row before it (a row was deleted or inserted).
    ``progress(checked, total)`` is called after each chunk.
    """
    total = AuditLog.objects.count() if progress else 0
    expected_prev = GENESIS_HASH
    checked = 0
    for row in AuditLog.objects.order_by("seq").iterator(chunk_size=chunk_size):
        if row.prev_hash != expected_prev:
            return ChainVerification(False, checked, row.id, "does not follow the previous row")
        if row.compute_hash() != row.hash:
            return ChainVerification(False, checked, row.id, "content does not match its hash")
        expected_prev = row.hash
        checked += 1
        if progress and checked % chunk_size == 0:
            progress(checked, total)
    if progress:
        progress(checked, total)
    return ChainVerification(True, checked)


@dataclass(frozen=True)
class RowVerdict:
    """Whether one row is intact: its content gives its hash and it links to the row before."""

    ok: bool
    reason: str = ""

    def __str__(self) -> str:
        return "intact" if self.ok else f"BROKEN: {self.reason}"


def verify_rows(rows: Iterable[AuditLog]) -> dict[uuid.UUID, RowVerdict]:
    """Check each of ``rows`` on its own: its hash against its content, and its ``prev_hash``
    against the hash of the row with the previous ``seq`` (read in one query, whoever's row
    it is). Cost grows with the rows given, not with the chain: what an admin page shows.

    Unlike :func:`verify_chain` it cannot see rows deleted from the end of the chain, nor a
    rewritten run of rows whose hashes were all recomputed up to the newest; that takes the
    whole chain (``manage.py automate_audit_verify``).
    """
    rows = list(rows)
    wanted = {row.seq - 1 for row in rows if row.seq > 1}
    before = dict(
        AuditLog.objects.filter(seq__in=wanted).values_list("seq", "hash") if wanted else []
    )
    verdicts: dict[uuid.UUID, RowVerdict] = {}
    for row in rows:
        previous = GENESIS_HASH if row.seq == 1 else before.get(row.seq - 1)
        if previous is None:
            verdict = RowVerdict(False, f"the row before it (seq {row.seq - 1}) is missing")
        elif row.prev_hash != previous:
            verdict = RowVerdict(False, "does not follow the previous row")
        elif row.compute_hash() != row.hash:
            verdict = RowVerdict(False, "content does not match its hash")
        else:
            verdict = RowVerdict(True)
        verdicts[row.id] = verdict
    return verdicts


def actor_for_request(request: HttpRequest | Any) -> str:
    """``user:<id>`` for a signed-in user, ``api_key:<prefix>`` for an API key, else system."""
    user = getattr(request, "user", None)
    if user is not None and getattr(user, "is_authenticated", False):
        return f"user:{user.pk}"
    prefix = getattr(getattr(request, "auth", None), "prefix", None)
    if prefix:
        return f"api_key:{prefix}"
    return "system"
