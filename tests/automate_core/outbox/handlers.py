"""Handlers the outbox tests run; worker subprocesses import them with ``--include``.

``test.record`` writes the job id and its fencing token into ``outbox_test_record`` (primary key
on the job id) in the job's transaction: a row exists only for an attempt that committed.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from django.db import connection

from automate_core.outbox.handlers import outbox_handler
from automate_core.outbox.store import Lease

RECORD_TABLE = "outbox_test_record"

# In-process tests plug code in here, run after the record is written ("hook" in the payload).
HOOKS: dict[str, Callable[[Lease], None]] = {}


def create_record_table() -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {RECORD_TABLE} "
            "(job_id uuid PRIMARY KEY, token bigint NOT NULL, worker text NOT NULL DEFAULT '')"
        )
        cursor.execute(f"TRUNCATE {RECORD_TABLE}")


def records() -> dict[str, int]:
    """job id -> fencing token of the attempt that committed."""
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT job_id, token FROM {RECORD_TABLE}")  # noqa: S608 -- a constant table name
        return {str(job_id): token for job_id, token in cursor.fetchall()}


@outbox_handler("test.noop")
def noop(job: Lease) -> None:
    pass


@outbox_handler("test.record")
def record(job: Lease) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {RECORD_TABLE} (job_id, token, worker) VALUES (%s, %s, %s)",  # noqa: S608 -- constant table, values bound
            [job.job_id, job.token, job.owner],
        )
    if job.payload.get("sleep"):
        time.sleep(job.payload["sleep"])
    if job.payload.get("hook"):
        HOOKS[job.payload["hook"]](job)


@outbox_handler("test.fail")
def fail(job: Lease) -> None:
    raise RuntimeError(job.payload.get("message", "boom"))
