"""Every state move of an OutboxJob, each one statement (or one short transaction) in Postgres.

What is guaranteed:

- :func:`enqueue` writes in the caller's transaction: if the caller rolls back there is no job
  and no wake-up (the NOTIFY is issued in the same transaction, so Postgres delivers it only on
  commit).
- :func:`claim_batch` gives each due job to exactly one claimer (``FOR UPDATE SKIP LOCKED``),
  bumps its fencing token and returns :class:`Lease` objects carrying that token.
- :func:`complete`, :func:`fail`, :func:`release` and :func:`heartbeat` act only while the job is
  running under the lease's token. A lease is not exclusive in time: once it expires, the reaper
  re-queues the job and another worker may run it while the first is still busy; only the newest
  token can finish it. The first gets :class:`LeaseLost`, and because handlers write in the same
  transaction as :func:`complete` (see :func:`automate_core.outbox.worker.run_job`), its writes
  roll back with it.

The SQL is Postgres's: the runtime runs on Postgres only (docs/decisions/0001-postgres-only.md).
"""

from __future__ import annotations

import contextvars
import functools
import json
import operator
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, transaction
from django.db.models import Case, DateTimeField, F, Min, Q, QuerySet, Value, When
from django.db.models.functions import Concat, Now
from django.utils import timezone

from automate_core import prepared
from automate_core.conf import automate_settings
from automate_core.errors import ConflictError
from automate_core.outbox.models import OutboxJob
from automate_core.prepared import Columns
from automate_core.tracing import current_trace_id

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

Status = OutboxJob.Status

# last_error keeps the end of long tracebacks, where the cause is.
ERROR_MAX_CHARS = 8000


class LeaseLost(ConflictError):
    """The job is no longer running under this lease's token: another claim took it over."""

    code = "lease_lost"
    default_message = "The job's lease was taken over; this attempt cannot finish it."


@dataclass(frozen=True)
class Lease:
    """A claimed job: what a handler receives, and the token needed to finish the attempt."""

    job_id: uuid.UUID
    kind: str
    payload: Any
    token: int
    owner: str
    attempt: int
    max_attempts: int
    tenant_id: uuid.UUID | None = None
    trace_id: str = ""
    idempotency_key: str | None = None

    @property
    def is_last_attempt(self) -> bool:
        return self.attempt >= self.max_attempts


def enqueue(
    kind: str,
    payload: Any,
    *,
    tenant: Tenant | uuid.UUID | None = None,
    available_at: datetime | None = None,
    idempotency_key: str | None = None,
    trace_id: str | None = None,
    max_attempts: int | None = None,
) -> OutboxJob:
    """Add a job in the current transaction; it becomes claimable at ``available_at`` (now).

    With an ``idempotency_key`` already used by a stored job of the same tenant, nothing is
    added and that job is returned. The trace id defaults to the current one, so logs follow the
    work across processes.
    """
    job = OutboxJob(
        kind=kind,
        payload=payload,
        tenant_id=getattr(tenant, "pk", tenant),
        available_at=available_at or timezone.now(),
        idempotency_key=idempotency_key,
        trace_id=trace_id or current_trace_id() or "",
        max_attempts=max_attempts or automate_settings.OUTBOX_MAX_ATTEMPTS,
    )
    if idempotency_key is None:
        # The hot path (every timer, retry and hook): the row and the wake-up in one round
        # trip, and no ORM query building.
        job.updated_at = job.created_at
        with prepared.cursor() as cursor:
            cursor.execute(
                _ENQUEUE_SQL, [*job_params(job), automate_settings.OUTBOX_NOTIFY_CHANNEL]
            )
        job._state.adding, job._state.db = False, connection.alias
        return job
    # ON CONFLICT DO NOTHING waits for a concurrent insert of the same key, so the read below
    # always finds the one row that won.
    OutboxJob.objects.bulk_create([job], ignore_conflicts=True)
    stored = OutboxJob.objects.get(**{"tenant_id": job.tenant_id}, idempotency_key=idempotency_key)
    if stored.pk != job.pk:
        return stored
    notify()
    return job


def notify() -> None:
    """Wake listening workers when the current transaction commits.

    Postgres folds identical notifications of one transaction into one, and drops them on
    rollback. Workers treat a notification only as a hint to look at the table.
    """
    with prepared.cursor() as cursor:
        cursor.execute("SELECT pg_notify(%s, '')", [automate_settings.OUTBOX_NOTIFY_CHANNEL])


_TABLE = OutboxJob._meta.db_table
_JOB = Columns(OutboxJob._meta.concrete_fields)


def job_params(job: OutboxJob) -> list[Any]:
    """The values of ``job``'s columns for :data:`INSERT_JOB_SQL`, in column order."""
    return _JOB.params(job)


def new_job(
    kind: str,
    payload: Any,
    *,
    tenant_id: uuid.UUID | None,
    trace_id: str,
    available_at: datetime | None = None,
    handoff: bool = False,
) -> OutboxJob:
    """An unsaved job with every column set, for raw statements that insert it (see
    :data:`INSERT_JOB_SQL`); :func:`enqueue` is the usual way to add one.

    With ``handoff`` and a worker :func:`receiving_handoffs` in this context, a job due now is
    made already claimed by that worker (running, attempt 1, token 1, leased); once it is
    written, :func:`hand_off` gives it to the worker after the transaction commits.
    """
    now = timezone.now()
    job = OutboxJob(
        kind=kind,
        payload=payload,
        tenant_id=tenant_id,
        available_at=available_at or now,
        trace_id=trace_id,
        max_attempts=automate_settings.OUTBOX_MAX_ATTEMPTS,
        created_at=now,
        updated_at=now,
    )
    receiver = _receiver.get() if handoff else None
    if receiver is not None and job.available_at <= now:
        job.status, job.attempts, job.fencing_token = Status.RUNNING, 1, 1
        job.lease_owner, job.started_at = receiver.owner, now
        # The app's clock until the worker's first heartbeat extends it by the database's.
        job.lease_expires_at = now + timedelta(seconds=receiver.lease_seconds)
    return job


@dataclass
class _Receiver:
    owner: str
    lease_seconds: float
    received: list[Lease]


_receiver: contextvars.ContextVar[_Receiver | None] = contextvars.ContextVar(
    "outbox_handoff", default=None
)


@contextmanager
def receiving_handoffs(owner: str, lease_seconds: float) -> Iterator[list[Lease]]:
    """Let the block hand jobs straight to this worker instead of queueing them.

    A job written claimed for ``owner`` (see :func:`new_job`) is appended to the yielded list
    once its transaction commits, so the worker runs it next with no claim, no NOTIFY and no
    wait; if the transaction rolls back, the job does not exist and nothing is appended. If
    the worker dies first, the job is an ordinary running job whose lease expires: the reaper
    re-queues it, as for any claimed job.
    """
    receiver = _Receiver(owner, lease_seconds, [])
    token = _receiver.set(receiver)
    try:
        yield receiver.received
    finally:
        _receiver.reset(token)


def hand_off(job: OutboxJob) -> bool:
    """After writing ``job`` (made by :func:`new_job` with ``handoff``), give it to the
    receiving worker when the transaction commits. False if it was not claimed for one."""
    receiver = _receiver.get()
    if job.status != Status.RUNNING or receiver is None or job.lease_owner != receiver.owner:
        return False
    lease = _lease(job)
    transaction.on_commit(lambda: receiver.received.append(lease))
    return True


#: ``INSERT`` of one job, ``{source}`` being ``VALUES (...)`` or ``SELECT ... FROM cte`` (so
#: the job is written only when that CTE yields a row); parameters from :func:`job_params`.
INSERT_JOB_SQL = f"INSERT INTO {_TABLE} ({_JOB.names}) {{source}}"
JOB_VALUES = f"VALUES ({_JOB.placeholders})"
JOB_SELECT = f"SELECT {_JOB.placeholders}"

_ENQUEUE_SQL = f"""
WITH job AS ({INSERT_JOB_SQL.format(source=JOB_VALUES)} RETURNING 1)
SELECT pg_notify(%s, '') FROM job
"""  # noqa: S608 (constants)

#: Moves of a running job under its lease (``id`` and fencing token are the parameters),
#: ``RETURNING 1``: for statements that fold the job's move into their own writes.
ADVANCE_JOB_SQL = f"""
UPDATE {_TABLE} SET payload = %s::jsonb, updated_at = statement_timestamp()
WHERE id = %s::uuid AND fencing_token = %s::bigint AND status = '{Status.RUNNING.value}'
RETURNING 1
"""  # noqa: S608 (constants)
COMPLETE_JOB_SQL = f"""
UPDATE {_TABLE}
SET status = '{Status.DONE.value}', finished_at = statement_timestamp(), lease_expires_at = NULL,
    updated_at = statement_timestamp()
WHERE id = %s::uuid AND fencing_token = %s::bigint AND status = '{Status.RUNNING.value}'
RETURNING 1
"""  # noqa: S608 (constants)
# Literal statuses (not parameters) so the planner matches the partial index outbox_claimable_idx.
_CLAIM_SQL = f"""
WITH picked AS (
    SELECT id FROM {_TABLE}
    WHERE status IN ('{Status.QUEUED.value}', '{Status.FAILED.value}')
      AND available_at <= statement_timestamp()
    ORDER BY available_at
    LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
)
UPDATE {_TABLE} AS job
SET status = '{Status.RUNNING.value}',
    attempts = job.attempts + 1,
    fencing_token = job.fencing_token + 1,
    lease_owner = %(owner)s,
    lease_expires_at = statement_timestamp() + %(lease_seconds)s * interval '1 second',
    started_at = statement_timestamp(),
    updated_at = statement_timestamp()
FROM picked
WHERE job.id = picked.id
RETURNING job.id, job.kind, job.payload, job.fencing_token, job.attempts, job.max_attempts,
          job.tenant_id, job.trace_id, job.idempotency_key, job.available_at
"""  # noqa: S608 (table name and statuses are constants)


def claim_batch(worker_id: str, limit: int, lease_seconds: float | None = None) -> list[Lease]:
    """Claim up to ``limit`` due jobs for ``worker_id``, oldest ``available_at`` first.

    One statement: rows another claimer has locked are skipped, never waited for. Call it
    outside a transaction so the claim commits at once.
    """
    seconds = lease_seconds if lease_seconds is not None else automate_settings.OUTBOX_LEASE_SECONDS
    if limit <= 0:
        return []
    with prepared.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, {"limit": limit, "owner": worker_id, "lease_seconds": seconds})
        rows = cursor.fetchall()
    rows.sort(key=operator.itemgetter(9))
    return [
        Lease(
            job_id=row[0],
            kind=row[1],
            payload=json.loads(row[2]),  # Django reads jsonb as text
            token=row[3],
            owner=worker_id,
            attempt=row[4],
            max_attempts=row[5],
            tenant_id=row[6],
            trace_id=row[7],
            idempotency_key=row[8],
        )
        for row in rows
    ]


def adopt(
    job_id: uuid.UUID, token: int, *, owner: str, lease_seconds: float | None = None
) -> Lease:
    """Take over a lease handed to another process (the Celery relay), renewing it.

    Raises LeaseLost if the token is no longer current: the job was re-queued meanwhile.
    """
    seconds = lease_seconds if lease_seconds is not None else automate_settings.OUTBOX_LEASE_SECONDS
    held = OutboxJob.objects.filter(id=job_id, fencing_token=token, status=Status.RUNNING)
    if not held.update(lease_owner=owner, lease_expires_at=_from_now(seconds)):
        raise LeaseLost(details={"job_id": str(job_id), "token": token})
    job = held.first()
    if job is None:
        raise LeaseLost(details={"job_id": str(job_id), "token": token})
    return _lease(job)


def heartbeat(leases: Iterable[Lease], lease_seconds: float | None = None) -> set[uuid.UUID]:
    """Extend the leases still held (job running under the same token).

    Returns the job ids of the leases taken over: the job was claimed again or re-queued by the
    reaper. Jobs this lease already finished (done, failed, dead under its token) are not lost.
    """
    by_id = {lease.job_id: lease for lease in leases}
    if not by_id:
        return set()
    seconds = lease_seconds if lease_seconds is not None else automate_settings.OUTBOX_LEASE_SECONDS
    if _held(by_id.values()).update(lease_expires_at=_from_now(seconds)) == len(by_id):
        return set()
    ours = _matching(by_id.values()).exclude(status=Status.QUEUED)
    return set(by_id) - set(ours.values_list("id", flat=True))


def complete(lease: Lease) -> None:
    """Mark the job done. Raises LeaseLost (nothing written) if the lease was taken over.

    Call it in the transaction that holds the handler's writes, so they commit or roll back with
    the completion.
    """
    # The per-job hot path: plain SQL spares the ORM's query building (GIL time per job).
    with prepared.cursor() as cursor:
        cursor.execute(COMPLETE_JOB_SQL, [lease.job_id, lease.token])
        done = cursor.rowcount
    if not done:
        raise LeaseLost(details={"job_id": str(lease.job_id), "token": lease.token})


def advance(lease: Lease, payload: Any) -> None:
    """Record a self-committing handler's progress in its job's payload, in the transaction of
    the step it finished. Raises LeaseLost (so the step rolls back) if the lease was taken
    over; a retry of the job starts from the payload written here."""
    with prepared.cursor() as cursor:
        cursor.execute(
            ADVANCE_JOB_SQL, [json.dumps(payload, cls=DjangoJSONEncoder), lease.job_id, lease.token]
        )
        held = cursor.rowcount
    if not held:
        raise LeaseLost(details={"job_id": str(lease.job_id), "token": lease.token})


def fail(lease: Lease, error: str, *, retry_in: float | None = None) -> str:
    """Record a failed attempt: retry after a backoff, or ``dead`` once attempts are spent.

    Returns the new status. Raises LeaseLost if the lease was taken over (nothing written).
    """
    fields: dict[str, Any] = {
        "last_error": error[-ERROR_MAX_CHARS:],
        "lease_expires_at": None,
        "updated_at": Now(),
    }
    if lease.is_last_attempt:
        status = fields["status"] = Status.DEAD
        fields["finished_at"] = Now()
    else:
        status = fields["status"] = Status.FAILED
        delay = retry_in if retry_in is not None else backoff_delay(lease.attempt)
        fields["available_at"] = _from_now(delay)
    if not _held([lease]).update(**fields):
        raise LeaseLost(details={"job_id": str(lease.job_id), "token": lease.token})
    return status


def release(leases: Sequence[Lease]) -> int:
    """Give back claimed jobs that were never started (a stopping worker); they keep their place.

    The attempt is not counted. Leases taken over meanwhile are left alone.
    """
    if not leases:
        return 0
    released = _held(leases).update(
        status=Status.QUEUED,
        attempts=F("attempts") - 1,
        lease_expires_at=None,
        updated_at=Now(),
    )
    if released:
        notify()
    return released


def backoff_delay(
    attempt: int,
    *,
    base: float | None = None,
    cap: float | None = None,
    jitter: float | None = None,
    rng: random.Random | None = None,
) -> float:
    """Seconds to wait after failed attempt ``attempt`` (1-based).

    ``min(cap, base * 2**(attempt-1))``, shortened by a random fraction up to ``jitter`` so jobs
    that failed together do not retry together.
    """
    base = automate_settings.OUTBOX_BACKOFF_BASE_SECONDS if base is None else base
    cap = automate_settings.OUTBOX_BACKOFF_MAX_SECONDS if cap is None else cap
    jitter = automate_settings.OUTBOX_BACKOFF_JITTER if jitter is None else jitter
    delay = min(cap, base * 2.0 ** min(max(attempt - 1, 0), 64))
    return delay * (1.0 - jitter * (rng or random).random())


def reap_expired(limit: int = 1000) -> int:
    """Re-queue running jobs whose lease expired (their worker died or hung); returns the count.

    A job whose attempts are spent goes ``dead`` instead, so a job that kills its worker cannot
    loop forever. Rows locked by a worker finishing them are skipped.
    """
    with transaction.atomic():
        ids = list(
            OutboxJob.objects.filter(status=Status.RUNNING, lease_expires_at__lt=Now())
            .select_for_update(skip_locked=True)
            .values_list("id", flat=True)[:limit]
        )
        if not ids:
            return 0
        spent = Q(attempts__gte=F("max_attempts"))
        reaped = OutboxJob.objects.filter(id__in=ids).update(
            status=Case(When(spent, then=Value(Status.DEAD)), default=Value(Status.QUEUED)),
            finished_at=Case(When(spent, then=Now()), default=None, output_field=DateTimeField()),
            lease_expires_at=None,
            last_error=Concat(
                Value("LeaseExpired: the lease of "),
                F("lease_owner"),
                Value(
                    " expired before the attempt finished (worker crashed, hung or lost the "
                    "database)."
                ),
            ),
            updated_at=Now(),
        )
        notify()
    return reaped


def redrive(job_ids: Iterable[uuid.UUID | str]) -> int:
    """Put dead jobs back in the queue with a fresh set of attempts; returns how many moved."""
    moved = OutboxJob.objects.filter(id__in=list(job_ids), status=Status.DEAD).update(
        status=Status.QUEUED,
        attempts=0,
        available_at=Now(),
        finished_at=None,
        updated_at=Now(),
    )
    if moved:
        notify()
    return moved


def prune(
    older_than: timedelta | None = None,
    *,
    dead_older_than: timedelta | None = None,
    batch_size: int = 5000,
) -> int:
    """Delete done jobs finished more than ``older_than`` ago (default: the retention setting).

    Dead jobs are deleted only past ``dead_older_than`` (default: the dead retention setting,
    None keeps them). Deletes in batches so no transaction grows large.
    """
    rules: list[tuple[str, timedelta]] = []
    done_age = older_than
    if done_age is None:
        done_age = timedelta(seconds=automate_settings.OUTBOX_DONE_RETENTION_SECONDS)
    rules.append((Status.DONE, done_age))
    dead_age = dead_older_than
    if dead_age is None and automate_settings.OUTBOX_DEAD_RETENTION_SECONDS is not None:
        dead_age = timedelta(seconds=automate_settings.OUTBOX_DEAD_RETENTION_SECONDS)
    if dead_age is not None:
        rules.append((Status.DEAD, dead_age))

    deleted = 0
    for status, age in rules:
        old = OutboxJob.objects.filter(status=status, finished_at__lt=timezone.now() - age)
        while True:
            ids = list(old.order_by().values_list("id", flat=True)[:batch_size])
            if ids:
                deleted += OutboxJob.objects.filter(id__in=ids, status=status).delete()[0]
            if len(ids) < batch_size:
                break
    return deleted


def next_due_in() -> float | None:
    """Seconds until the earliest claimable job is due (0 if one is due now), None if none."""
    first = OutboxJob.objects.filter(status__in=OutboxJob.CLAIMABLE).aggregate(
        first=Min("available_at")
    )["first"]
    if first is None:
        return None
    return max(0.0, (first - timezone.now()).total_seconds())


def _matching(leases: Iterable[Lease]) -> QuerySet[OutboxJob]:
    """The jobs whose fencing token is still these leases' (whatever their status)."""
    match = functools.reduce(
        operator.or_, (Q(id=lease.job_id, fencing_token=lease.token) for lease in leases)
    )
    return OutboxJob.objects.filter(match)


def _held(leases: Iterable[Lease]) -> QuerySet[OutboxJob]:
    """The jobs still running under these exact leases (same id and token)."""
    return _matching(leases).filter(status=Status.RUNNING)


def _from_now(seconds: float) -> Any:
    """The database's clock plus ``seconds``: leases are timed by one clock, the server's."""
    return Now() + timedelta(seconds=seconds)


def _lease(job: OutboxJob) -> Lease:
    return Lease(
        job_id=job.id,
        kind=job.kind,
        payload=job.payload,
        token=job.fencing_token,
        owner=job.lease_owner,
        attempt=job.attempts,
        max_attempts=job.max_attempts,
        tenant_id=job.tenant_id,
        trace_id=job.trace_id,
        idempotency_key=job.idempotency_key,
    )
