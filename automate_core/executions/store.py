"""The workflow engine's hot-path reads and writes of runs, one statement each on Postgres.

A job's step visits cost one statement each, plus one read for the first:

- :func:`load` reads the run with its event and its step history, on the first visit of a job
  (the visits that follow in the same job keep all of it in memory);
- the step runs, with no lock held on the run;
- :func:`checkpoint` locks the run and the job and checks that the run is still in the state
  the visit started from (same ``seq`` and status) and that the job is still held under the
  lease's fencing token; only then it updates the run, upserts the visit's StepRun and advances
  or completes the job: one statement, all of it or nothing. If the run moved meanwhile
  (cancelled) it raises :class:`RunMoved`; if the lease was taken over, LeaseLost; the caller's
  transaction then rolls back the step's own writes too. When the step wrote nothing, the
  statement is sent alone, in autocommit (see :func:`automate_core.prepared.cursor`).

The compare-and-set replaces a lock held across the step: every other writer of a run (cancel,
retry, signal, timers) bumps its ``seq``, and a duplicate of the visit (a job taken over after
its lease expired) cannot get past the fencing token, so at most one attempt of a visit
commits, and a completed visit is never run again.

:func:`create_run` writes a new run, its first step job and the workers' wake-up in one
statement, and writes nothing when the event already started that workflow.

Plain SQL spares the ORM's query building, which dominated the engine's cost per run (see
docs/benchmarks.md). The runtime runs on Postgres only (docs/decisions/0001-postgres-only.md).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from django.db import connection

from automate_core import prepared
from automate_core.conf import automate_settings
from automate_core.events.models import Event
from automate_core.executions.models import Execution, StepRun
from automate_core.outbox import store as outbox
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.store import Lease, LeaseLost
from automate_core.prepared import Columns, placeholder

__all__ = [
    "RUN_STATE_FIELDS",
    "LoadedRun",
    "RunMoved",
    "checkpoint",
    "create_run",
    "entity_key",
    "event_for_job",
    "load",
]

_RUNS = Execution._meta.db_table
_JOBS = OutboxJob._meta.db_table
_RUNNING = OutboxJob.Status.RUNNING.value
_STEPS = StepRun._meta.db_table
_EVENTS = Event._meta.db_table

_RUN = Columns(Execution._meta.concrete_fields)
_STEP = Columns(StepRun._meta.concrete_fields)
_EVENT = Columns(Event._meta.concrete_fields)

#: The columns of a run the engine changes as it moves it; :func:`checkpoint` writes these only
#: (so it never overwrites columns other code keeps, like ``usage``).
RUN_STATE_FIELDS = (
    "status",
    "seq",
    "current_step",
    "context",
    "result",
    "error",
    "waiting_for",
    "wake_at",
    "started_at",
    "finished_at",
    "updated_at",
)
# A StepRun's identity, never changed by a later attempt of the same visit.
_STEP_IDENTITY = {"id", "created_at", "execution", "seq", "step_id", "idempotency_key", "trace_id"}
# What the engine needs of earlier visits: templates read outputs, keys count visits.
_HISTORY = ("id", "seq", "step_id", "status", "attempt", "idempotency_key", "output")


class RunMoved(Exception):
    """The run is no longer in the state the visit started from: another writer (a cancel)
    moved it, and the visit must not be checkpointed."""


@dataclass
class LoadedRun:
    """A run with what its visits read: the event's scope, the entity it is about (see
    :func:`entity_key`) and the step history. ``expected`` is the ``(seq, status)`` its row has
    in the database, as this job last read or wrote it."""

    run: Execution
    event_scope: dict[str, Any] | None
    history: list[StepRun] = field(default_factory=list)
    expected: tuple[int, str] = (0, "")
    entity: str | None = None

    def __post_init__(self) -> None:
        self.expected = (self.run.seq, self.run.status)

    def visit(self, seq: int) -> StepRun | None:
        return next((r for r in reversed(self.history) if r.seq == seq), None)

    def visits_of(self, step_id: str) -> int:
        return sum(1 for r in self.history if r.step_id == step_id)

    def outputs(self) -> dict[str, dict[str, Any]]:
        """``steps.<id>.output`` for templates: each step's latest completed output."""
        return {
            r.step_id: {"output": r.output}
            for r in self.history
            if r.status == StepRun.Status.COMPLETED
        }

    def record(self, step_run: StepRun) -> None:
        """Keep a checkpointed visit in the history the next visits of this job read."""
        if self.history and self.history[-1].seq == step_run.seq:
            self.history[-1] = step_run
        else:
            self.history.append(step_run)


_HISTORY_JSON = ", ".join(
    f"s.{f.column}" for f in Columns(map(StepRun._meta.get_field, _HISTORY)).fields
)
_LOAD_SQL = f"""
SELECT {", ".join(f"r.{f.column}" for f in _RUN.fields)},
       {", ".join(f"e.{f.column}" for f in _EVENT.fields)},
       (SELECT json_agg(json_build_array({_HISTORY_JSON}) ORDER BY s.seq)::text
          FROM {_STEPS} s WHERE s.execution_id = r.id)
FROM {_RUNS} r LEFT JOIN {_EVENTS} e ON e.id = r.event_id
WHERE r.id = %s::uuid
"""  # noqa: S608 (table and column names come from the models)
_RUN_WIDTH, _EVENT_WIDTH = len(_RUN.fields), len(_EVENT.fields)
_EVENT_ID = _RUN_WIDTH + _EVENT.attnames.index("id")


def load(run_id: uuid.UUID | str) -> LoadedRun | None:
    """Read run ``run_id``, its event and its visits (no lock: see :func:`checkpoint`)."""
    with prepared.cursor() as cursor:
        cursor.execute(_LOAD_SQL, [run_id])
        row = cursor.fetchone()
    if row is None:
        return None
    run: Execution = _RUN.instance(Execution, row[:_RUN_WIDTH])
    event_row = row[_RUN_WIDTH : _RUN_WIDTH + _EVENT_WIDTH]
    scope, entity = None, None
    if row[_EVENT_ID] is not None:
        event = _EVENT.instance(Event, event_row)
        scope, entity = event.as_scope(), entity_key(event.content_type_id, event.object_id)
    visits = [
        StepRun(
            id=uuid.UUID(id_),
            execution_id=run.pk,
            seq=seq,
            step_id=step_id,
            status=status,
            attempt=attempt,
            idempotency_key=key,
            output=output,
        )
        for id_, seq, step_id, status, attempt, key, output in json.loads(row[-1] or "[]")
    ]
    return LoadedRun(run, scope, visits, entity=entity)


def entity_key(content_type_id: int | None, object_id: str | None) -> str | None:
    """How an event wait records the entity it is correlated with: ``"<content type>:<id>"``
    (the same text :data:`_EVENT_FOR_JOB_SQL` builds from an event's columns)."""
    if content_type_id is None or object_id is None:
        return None
    return f"{content_type_id}:{object_id}"


# The run's compare-and-set comes first; the StepRun and the job move only if it matched.
_RUN_STATE = Columns([Execution._meta.get_field(name) for name in RUN_STATE_FIELDS])
# Both conditions are checked, and both rows locked, before anything is written: then the
# writes all apply or none does, also when the statement commits alone (autocommit).
_HELD = f"""
SELECT r.id FROM {_RUNS} r, {_JOBS} j
WHERE r.id = %s::uuid AND r.seq = %s::integer AND r.status = %s::text
  AND j.id = %s::uuid AND j.fencing_token = %s::bigint AND j.status = '{_RUNNING}'
FOR UPDATE OF r, j
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound
_RUN_UPDATE = f"""
UPDATE {_RUNS} SET {", ".join(f"{f.column} = {placeholder(f)}" for f in _RUN_STATE.fields)}
WHERE id = %s::uuid AND EXISTS (SELECT 1 FROM held) RETURNING 1
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound
_STEP_UPSERT = f"""
INSERT INTO {_STEPS} ({_STEP.names})
SELECT {_STEP.placeholders} FROM run
ON CONFLICT (execution_id, seq) DO UPDATE SET {
    ", ".join(
        f"{f.column} = EXCLUDED.{f.column}" for f in _STEP.fields if f.name not in _STEP_IDENTITY
    )
}
RETURNING 1
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound
_IF_HELD = "AND EXISTS (SELECT 1 FROM held) RETURNING 1"
_LEASE_HELD_SQL = f"""
SELECT 1 FROM {_JOBS} WHERE id = %s::uuid AND fencing_token = %s::bigint AND status = '{_RUNNING}'
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound


def _checkpoint_sql(with_step: bool, advance: bool) -> str:
    job = outbox.ADVANCE_JOB_SQL if advance else outbox.COMPLETE_JOB_SQL
    parts = [f"held AS ({_HELD})", f"run AS ({_RUN_UPDATE})"]
    if with_step:
        parts.append(f"step AS ({_STEP_UPSERT})")
    parts.append(f"job AS ({job.replace('RETURNING 1', _IF_HELD)})")
    return "WITH " + ",\n".join(parts) + "\nSELECT count(*) FROM job"


_CHECKPOINT_SQL = {
    (with_step, advance): _checkpoint_sql(with_step, advance)
    for with_step in (True, False)
    for advance in (True, False)
}


def checkpoint(
    loaded: LoadedRun,
    step_run: StepRun | None,
    job: Lease,
    *,
    advance_to: Mapping[str, Any] | None = None,
) -> None:
    """Write a visit if the run is still as ``loaded.expected`` says: the run's new state,
    ``step_run`` (inserted, or updated if an earlier attempt left it), and the job moved on to
    the payload ``advance_to`` or, when None, completed.

    Raises :class:`RunMoved` when another writer changed the run first, LeaseLost when the job
    is no longer held under ``job``'s token (nothing written in either case: call it inside
    the visit's transaction so that the visit's other writes roll back too).
    """
    run = loaded.run
    if step_run is not None:
        step_run.updated_at = run.updated_at
    params: list[Any] = [run.pk, *loaded.expected, job.job_id, job.token]
    params += [*_RUN_STATE.params(run), run.pk]
    if step_run is not None:
        params += _STEP.params(step_run)
    if advance_to is not None:
        params.append(json.dumps(advance_to, cls=_PAYLOAD_ENCODER))
    params += [job.job_id, job.token]
    # A visit whose step wrote nothing has nothing else to commit: the checkpoint is then its
    # whole transaction, sent alone.
    with prepared.cursor(alone_if_idle=True) as cursor:
        cursor.execute(_CHECKPOINT_SQL[(step_run is not None, advance_to is not None)], params)
        (written,) = cursor.fetchone()
        if not written:
            cursor.execute(_LEASE_HELD_SQL, [job.job_id, job.token])
            if cursor.fetchone() is None:
                raise LeaseLost(details={"job_id": str(job.job_id), "token": job.token})
            raise RunMoved(str(run.pk))
    if step_run is not None:
        step_run._state.adding, step_run._state.db = False, connection.alias
    loaded.expected = (run.seq, run.status)
    if step_run is not None:
        loaded.record(step_run)


_PAYLOAD_ENCODER = OutboxJob._meta.get_field("payload").encoder


_RUN_INSERT = f"""
INSERT INTO {_RUNS} ({_RUN.names})
VALUES ({_RUN.placeholders})
ON CONFLICT (event_id, workflow_name) WHERE event_id IS NOT NULL DO NOTHING
RETURNING 1
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound
_CREATE_RUN_SQL = f"""
WITH run AS ({_RUN_INSERT}),
job AS ({outbox.INSERT_JOB_SQL.format(source=outbox.JOB_SELECT + " FROM run")} RETURNING 1)
SELECT (SELECT count(*) FROM run), (SELECT pg_notify(%s::text, '') FROM job)
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound
# A job handed straight to the worker that runs this transaction wakes nobody.
_CREATE_HANDED_RUN_SQL = f"""
WITH run AS ({_RUN_INSERT}),
job AS ({outbox.INSERT_JOB_SQL.format(source=outbox.JOB_SELECT + " FROM run")} RETURNING 1)
SELECT (SELECT count(*) FROM run), (SELECT count(*) FROM job)
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound


def create_run(run: Execution, first_job: OutboxJob) -> bool:
    """Insert ``run`` and its first job, waking the workers, or handing the job to the worker
    running this transaction when ``first_job`` was made for that (``new_job(handoff=True)``).
    False (and nothing written) when ``run.event`` already started ``run.workflow_name``."""
    now = run.created_at
    run.updated_at = first_job.created_at = first_job.updated_at = now
    handed = first_job.status == OutboxJob.Status.RUNNING
    params = [*_RUN.params(run), *outbox.job_params(first_job)]
    if not handed:
        params.append(automate_settings.OUTBOX_NOTIFY_CHANNEL)
    with prepared.cursor() as cursor:
        cursor.execute(_CREATE_HANDED_RUN_SQL if handed else _CREATE_RUN_SQL, params)
        created, _ = cursor.fetchone()
    if not created:
        return False
    run._state.adding, run._state.db = False, connection.alias
    first_job._state.adding, first_job._state.db = False, connection.alias
    if handed:
        outbox.hand_off(first_job)
    return True


_WAITING = Execution.Status.WAITING.value
# A wait correlated with an entity ("entity" in waiting_for) counts only for an event about it.
_EVENT_FOR_JOB_SQL = f"""
SELECT {", ".join(f"e.{f.column}" for f in _EVENT.fields)},
       EXISTS (SELECT 1 FROM {_RUNS} x
               WHERE x.status = '{_WAITING}' AND x.waiting_for ->> 'kind' = 'event'
                 AND x.waiting_for ->> 'name' = e.type
                 AND x.tenant_id IS NOT DISTINCT FROM e.tenant_id
                 AND (NOT x.waiting_for ? 'entity'
                      OR x.waiting_for ->> 'entity' = e.content_type_id || ':' || e.object_id))
FROM {_EVENTS} e WHERE e.id = %s::uuid
"""  # noqa: S608 -- names from _meta, statuses are constants, values bound


def event_for_job(event_id: uuid.UUID | str) -> tuple[Event | None, bool]:
    """The event an ``event.occurred`` job is for, and whether any run of its tenant waits for
    an event of its type (about its entity, for correlated waits), so the common case, none,
    costs no second query."""
    with prepared.cursor() as cursor:
        cursor.execute(_EVENT_FOR_JOB_SQL, [event_id])
        row = cursor.fetchone()
    if row is None:
        return None, False
    return _EVENT.instance(Event, row[:-1]), bool(row[-1])
