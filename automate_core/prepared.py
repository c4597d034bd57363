"""Server-side prepared statements for the runtime's hot paths (outbox moves, step checkpoints).

Django sends every query as text with its parameters inlined, so Postgres parses and plans each
one anew. For the few statements the engine runs for every job and every step visit, planning
costs several times their execution (about 0.3 ms against 0.06 ms for the step read), on the
same CPUs the workers need. :func:`cursor` gives a Django cursor over a server-binding psycopg
cursor that prepares each statement once per connection and then only binds parameters.

- Queries still go through Django's cursor wrapper: ``connection.execute_wrapper`` hooks, query
  logging under DEBUG (the SQL with ``%s`` placeholders) and error translation
  (``IntegrityError``...) all see them.
- Parameters are bound by the server, so a statement must say the type of a parameter Postgres
  cannot infer (an ``INSERT ... SELECT %s``): :func:`placeholder` writes ``%s::<column type>``.
- ``AUTOMATE["PREPARED_STATEMENTS"] = False`` falls back to Django's ordinary cursor, for
  connection poolers that cannot carry protocol-level prepared statements (PgBouncer in
  transaction mode before 1.21, or without ``max_prepared_statements``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from django.db import DEFAULT_DB_ALIAS, connection, connections, models
from django.db.backends.postgresql.base import ServerBindingCursor
from psycopg.pq import TransactionStatus

from automate_core.conf import automate_settings

# Statements are prepared only when asked (prepare=True below), never by the execution count:
# psycopg's threshold must not be None for that, so it is set out of reach.
_NEVER_BY_COUNT = 2**31


def placeholder(field: models.Field[Any, Any]) -> str:
    """``%s`` cast to ``field``'s column type, so the server knows the parameter's type.

    Strings are cast to ``text``, not ``varchar(n)``: that cast would silently cut a value too
    long for the column, where storing it must fail as it does through the ORM.
    """
    if isinstance(field, models.CharField | models.TextField):
        return "%s::text"
    return f"%s::{field.cast_db_type(connection)}"


_ServerBindingCursor: Any = ServerBindingCursor


class _PreparingCursor(_ServerBindingCursor):
    """Django's server-binding cursor, preparing every statement it executes."""

    def execute(self, query: Any, params: Any = None, **kwargs: Any) -> Any:
        kwargs.setdefault("prepare", True)
        result = super().execute(query, params, **kwargs)
        if getattr(self, "_query", None) is None:
            # psycopg keeps no query text for a prepared execution; Django's query log (DEBUG,
            # CaptureQueriesContext) reads it from here.
            self._query = _Sent(query.encode() if isinstance(query, str) else query, params)
        return result


@dataclass(frozen=True)
class _Sent:
    query: bytes
    params: Any


@contextmanager
def cursor(*, alone_if_idle: bool = False) -> Iterator[Any]:
    """A cursor whose statements are prepared on first use in this connection.

    ``alone_if_idle``: if the surrounding transaction has not sent a statement yet, run this
    cursor's one statement in autocommit, as its own transaction. That is the same atomicity
    (a statement is atomic) without the ``BEGIN`` and ``COMMIT`` round trips; the enclosing
    ``atomic()`` then has nothing left to commit. A transaction that already wrote something
    is left alone, so the statement commits with those writes.
    """
    db = connections[DEFAULT_DB_ALIAS]
    db.ensure_connection()
    raw = db.connection
    alone = (
        alone_if_idle
        and not raw.autocommit
        and raw.info.transaction_status == TransactionStatus.IDLE
    )
    if alone:
        raw.autocommit = True
    try:
        if not automate_settings.PREPARED_STATEMENTS:
            with db.cursor() as plain:
                yield plain
            return
        if raw.prepare_threshold is None:
            raw.prepare_threshold = _NEVER_BY_COUNT
        db.validate_thread_sharing()
        with db.wrap_database_errors:
            prepared = _PreparingCursor(raw)
        wrapped = db.make_debug_cursor(prepared) if db.queries_logged else db.make_cursor(prepared)
        with wrapped:
            yield wrapped
    finally:
        if alone:
            raw.autocommit = False


class Columns:
    """How some fields of a model travel to and from plain SQL: column names, typed
    placeholders, parameter values of an instance (JSON encoded with the field's encoder; None
    in a nullable JSON field is SQL NULL, as the ORM stores it) and instances from rows (jsonb
    arrives as text and is decoded)."""

    def __init__(self, fields: Iterable[Any]) -> None:
        self.fields: list[Any] = list(fields)
        self.attnames = [f.attname for f in self.fields]
        self.names = ", ".join(f.column for f in self.fields)
        self.placeholders = ", ".join(placeholder(f) for f in self.fields)
        self._json = {
            i: (f.encoder, f.null)
            for i, f in enumerate(self.fields)
            if f.get_internal_type() == "JSONField"
        }

    def params(self, instance: models.Model) -> list[Any]:
        values = [getattr(instance, name) for name in self.attnames]
        for i, (encoder, null) in self._json.items():
            value = values[i]
            values[i] = None if value is None and null else json.dumps(value, cls=encoder)
        return values

    def instance(self, model: type[models.Model], row: Sequence[Any]) -> Any:
        """``model`` built from ``row`` (these columns, in order) as a queryset builds it."""
        values = list(row)
        for i in self._json:
            if isinstance(values[i], str):
                values[i] = json.loads(values[i])
        return model.from_db(connection.alias, self.attnames, values)
