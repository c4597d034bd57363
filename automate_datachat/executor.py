"""Runs guarded SQL as the data chat database role, read-only, bounded in time and size.

Each query runs on this thread's own connection as ``AUTOMATE_DATACHAT["ROLE"]`` (SELECT on
the backing relations only, ``default_transaction_read_only`` on), never on Django's
connection, inside ``BEGIN READ ONLY … ROLLBACK``. The three statements go out in one
pipeline (one network round trip), each with the extended query protocol, so Postgres itself
refuses a second statement in the query. ``statement_timeout`` and
``idle_in_transaction_session_timeout`` are set when the connection is opened; at most
``row_cap + 1`` rows are fetched.
"""

from __future__ import annotations

import functools
import threading
import time
from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from django.core.signals import setting_changed
from django.db import connections
from django.dispatch import receiver
from psycopg import errors as pg_errors

from automate_datachat.conf import datachat_settings
from automate_datachat.errors import SQLExecutionFailed, SQLTimeout
from automate_datachat.guard import GuardedSQL
from automate_datachat.results import QueryResult, ResultColumn

_local = threading.local()
_BEGIN = b"BEGIN READ ONLY"
_ROLLBACK = b"ROLLBACK"
#: What the role's connection takes from the default database's: the server and database only.
_SERVER_PARAMS = (
    "dbname",
    "host",
    "hostaddr",
    "port",
    "sslmode",
    "sslrootcert",
    "sslcert",
    "sslkey",
    "connect_timeout",
    "target_session_attrs",
)


def execute(guarded: GuardedSQL, params: Mapping[str, Any] | None = None) -> QueryResult:
    """Run ``guarded`` and return at most ``row_cap`` rows (``truncated`` if there were more).
    ``params`` holds a value for each of ``guarded.parameters``, sent as bind parameters."""
    values = [(params or {})[name] for name in guarded.parameters]
    return execute_sql(guarded.sql, row_cap=guarded.row_cap, values=values)


def execute_sql(sql: str, *, row_cap: int, values: Sequence[Any] = ()) -> QueryResult:
    """Run SQL as the role, read-only, with ``values`` bound to ``$1``, ``$2``... Only
    :func:`execute` and the tests (which show that the database stops what the guard would have
    refused) call this with unguarded SQL."""
    conn = connection()
    started = time.perf_counter()
    try:
        with conn.pipeline():
            conn.execute(_BEGIN)
            # A raw cursor takes Postgres' own $n placeholders (and leaves % alone).
            cursor = psycopg.RawCursor(conn) if values else conn.cursor()
            cursor.execute(sql.encode(), list(values) or None, binary=True)
            conn.execute(_ROLLBACK)
        with cursor:
            rows = cursor.fetchmany(row_cap + 1)
            description = cursor.description or []
    except psycopg.Error as exc:
        _discard_or_rollback(conn)
        raise _execution_error(exc) from exc
    duration_ms = (time.perf_counter() - started) * 1000
    truncated = len(rows) > row_cap
    rows = rows[:row_cap]
    types = conn.adapters.types
    columns = [
        ResultColumn(c.name, getattr(types.get(c.type_code), "name", str(c.type_code)))
        for c in description
    ]
    return QueryResult(
        columns=columns,
        rows=[tuple(row) for row in rows],
        row_count=len(rows),
        truncated=truncated,
        sql=sql,
        duration_ms=round(duration_ms, 3),
    )


def connection() -> psycopg.Connection[Any]:
    """This thread's connection as the data chat role (opened again if it was lost, or if the
    settings or the default database changed). Autocommit: :func:`execute_sql` sends its own
    ``BEGIN READ ONLY`` and ``ROLLBACK`` around each query."""
    conn: psycopg.Connection[Any] | None = getattr(_local, "conn", None)
    conninfo = _conninfo()
    if conn is None or conn.closed or getattr(_local, "conninfo", None) != conninfo:
        if conn is not None:
            conn.close()
        conn = psycopg.connect(conninfo, autocommit=True)
        _local.conn, _local.conninfo = conn, conninfo
    return conn


@functools.cache
def _conninfo() -> str:
    """:func:`role_conninfo`, built once (and again after ``AUTOMATE_DATACHAT`` or
    ``DATABASES`` change)."""
    return role_conninfo()


@receiver(setting_changed)
def _forget_conninfo(*, setting: str, **_: Any) -> None:
    if setting in ("AUTOMATE_DATACHAT", "DATABASES"):
        _conninfo.cache_clear()


def close_connection() -> None:
    conn = getattr(_local, "conn", None)
    if conn is not None:
        conn.close()
        _local.conn = None


def role_conninfo() -> str:
    """The role's connection string: ``DATABASE_URL`` if set, else the default database's
    server and database (the test database under tests) with the role's name and password."""
    options = (
        f"-c statement_timeout={int(datachat_settings.STATEMENT_TIMEOUT_MS)} "
        "-c idle_in_transaction_session_timeout="
        f"{int(datachat_settings.IDLE_IN_TRANSACTION_TIMEOUT_MS)} "
        "-c default_transaction_read_only=on"
    )
    url = datachat_settings.DATABASE_URL
    if url:
        return psycopg.conninfo.make_conninfo(url, options=options)
    server = connections["default"].get_connection_params()
    params: dict[str, Any] = {key: server[key] for key in _SERVER_PARAMS if server.get(key)}
    params.update(
        user=datachat_settings.ROLE,
        application_name="automate_datachat",
        options=options,
    )
    if datachat_settings.ROLE_PASSWORD:
        params["password"] = datachat_settings.ROLE_PASSWORD
    return psycopg.conninfo.make_conninfo(**params)


def _discard_or_rollback(conn: psycopg.Connection[Any]) -> None:
    try:
        conn.rollback()
    except psycopg.Error:
        conn.close()


def _execution_error(exc: psycopg.Error) -> SQLExecutionFailed:
    details = {"sqlstate": exc.sqlstate or "", "error": (exc.diag.message_primary or str(exc))}
    if isinstance(exc, pg_errors.QueryCanceled):
        return SQLTimeout(details=details)
    return SQLExecutionFailed(
        f"The database refused the query: {details['error']}", details=details
    )
