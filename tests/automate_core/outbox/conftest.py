"""Outbox fixtures: fast retry settings, the record table, raw connections and worker processes.

Worker subprocesses reach the *test* database: ``worker_env`` sets DATABASE_URL to the server of
``settings.DATABASE_URL`` with the test database's name, so the settings module connects there
instead of starting or using the development database.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import psycopg
import pytest
from django.conf import settings
from django.db import connection, connections
from django.db.models.functions import Now

from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.outbox.store import Lease
from tests.automate_core.outbox import handlers

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def outbox_settings(settings) -> None:
    settings.AUTOMATE = {
        **getattr(settings, "AUTOMATE", {}),
        "OUTBOX_BACKOFF_BASE_SECONDS": 2.0,
        "OUTBOX_BACKOFF_MAX_SECONDS": 60.0,
        "OUTBOX_BACKOFF_JITTER": 0.25,
        "OUTBOX_MAX_ATTEMPTS": 3,
        "OUTBOX_LEASE_SECONDS": 30,
    }


@pytest.fixture
def record_table(db) -> None:
    handlers.create_record_table()


@pytest.fixture
def raw_connection(db) -> Iterator[Callable[[], psycopg.Connection]]:
    """Opens extra connections to the test database, outside Django (closed after the test)."""
    opened: list[psycopg.Connection] = []

    def connect() -> psycopg.Connection:
        params = connection.get_connection_params()
        conn = psycopg.connect(**params, autocommit=True)
        opened.append(conn)
        return conn

    yield connect
    for conn in opened:
        conn.close()


def take_over(job_id: object, thief: str = "thief") -> Lease:
    """What a crashed or slow worker's peers do: expire its lease, reap, claim the job anew.

    Runs on another thread, hence another connection, committing at once.
    """
    taken: list[Lease] = []

    def steal() -> None:
        try:
            OutboxJob.objects.filter(id=job_id).update(
                lease_expires_at=Now() - timedelta(seconds=1)
            )
            store.reap_expired()
            taken.extend(lease for lease in store.claim_batch(thief, 10) if lease.job_id == job_id)
        finally:
            connections.close_all()

    thread = threading.Thread(target=steal)
    thread.start()
    thread.join()
    assert taken, f"job {job_id} could not be taken over"
    return taken[0]


@pytest.fixture
def worker_env(transactional_db) -> dict[str, str]:
    """Environment for `manage.py automate_worker` subprocesses bound to the test database."""
    url = urlsplit(settings.DATABASE_URL)._replace(path="/" + connection.settings_dict["NAME"])
    return {
        **os.environ,
        "DATABASE_URL": url.geturl(),
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "tests.settings",
        "PYTHONUNBUFFERED": "1",
    }


def start_worker(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        str(ROOT / "manage.py"),
        "automate_worker",
        "--include",
        "tests.automate_core.outbox.handlers",
        *args,
    ]
    with log.open("ab") as out:
        return subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)  # noqa: S603
