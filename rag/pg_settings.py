"""Postgres settings for the next statements of this connection, at the cost of a round trip
only when they change."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connection


@contextmanager
def session_setting(name: str, value: str) -> Iterator[None]:
    """``name`` = ``value`` for the statements run inside. Inside a transaction it is set
    local (gone at commit); in autocommit it is set for the session once and remembered on the
    database connection, so a query saves a transaction and two round trips."""
    if connection.in_atomic_block:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, true)", [name, value])
        yield
        return
    connection.ensure_connection()
    raw = connection.connection
    remembered: dict[str, str] | None = getattr(raw, "_rag_settings", None)
    if remembered is None:
        remembered = raw._rag_settings = {}  # on this database connection only
    if remembered.get(name) != value:
        with connection.cursor() as cursor:
            cursor.execute("SELECT set_config(%s, %s, false)", [name, value])
        remembered[name] = value
    yield
