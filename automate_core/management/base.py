"""The base of ``manage.py`` commands that work on the project's tables."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS, ProgrammingError, connections

MIGRATE_FIRST = "run `make run` or `manage.py migrate` first"
UNDEFINED_TABLE = "42P01"  # Postgres's SQLSTATE for a relation that does not exist


class DatabaseCommand(BaseCommand):
    """A command that reads or writes the installed apps' tables.

    On a fresh or unmigrated database it stops with a one-line :class:`CommandError` saying
    what to run, instead of a traceback: a query on a missing table becomes that error.
    Commands that catch errors and retry (the worker) call :meth:`require_tables` first.
    """

    def execute(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute(*args, **options)
        except ProgrammingError as exc:
            if getattr(exc.__cause__, "sqlstate", None) != UNDEFINED_TABLE:
                raise
            raise CommandError(f"{str(exc).splitlines()[0]}: {MIGRATE_FIRST}.") from exc

    def require_tables(self, using: str = DEFAULT_DB_ALIAS) -> None:
        """Stop now unless every installed model's table exists (one query)."""
        introspection = connections[using].introspection
        with connections[using].cursor() as cursor:
            existing = set(introspection.table_names(cursor))
        missing = sorted(set(introspection.django_table_names()) - existing)
        if missing:
            more = f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            raise CommandError(
                f"The database lacks {', '.join(missing[:3])}{more}: {MIGRATE_FIRST}."
            )
