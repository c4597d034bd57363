"""The database role data chat queries run as (see docs/datachat.md "The database role").

:func:`ensure_role` is idempotent: it creates the role or resets its attributes (LOGIN, no
superuser, no role/database creation, no RLS bypass), pins ``default_transaction_read_only``
and the timeouts on it, and makes its privileges exactly CONNECT on the database, USAGE on the
schemas involved and SELECT on the given relations (all other table and sequence privileges in
those schemas are revoked first).

:func:`ensure_role_after_migrate` runs it after each ``migrate`` when
``AUTOMATE_DATACHAT["MANAGE_ROLE"]`` says so (by default: with the embedded Postgres, where the
app's user is a superuser). In production the role is an operator's business:
``manage.py datachat_role`` with a user that may create roles and grant on the tables.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from django.apps import apps
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connection, transaction
from psycopg import sql

from automate_datachat.conf import datachat_settings
from automate_datachat.registry import registered_datasets

logger = logging.getLogger(__name__)


@dataclass
class RoleReport:
    role: str
    created: bool = False
    granted: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def allowed_relations() -> list[str]:
    """Every relation a dataset may read: the settings' allowlists and registered datasets."""
    relations = set(datachat_settings.ALLOWED_TABLES)
    relations.update(
        apps.get_model(label)._meta.db_table for label in datachat_settings.ALLOWED_MODELS
    )
    for tables in datachat_settings.TENANT_OWNED_TABLES.values():
        relations.update(tables)
    for dataset in registered_datasets():
        relations.update(table.relation for table in dataset.tables)
    return sorted(relations)


def ensure_role(relations: Iterable[str] | None = None) -> RoleReport:
    """Create or update the role and grant it SELECT on ``relations`` (default:
    :func:`allowed_relations`) in the default database. Needs CREATEROLE (or a superuser) to
    create the role, and ownership of the relations to grant on them."""
    wanted = sorted(set(allowed_relations() if relations is None else relations))
    for attempt in range(3):
        try:
            return _ensure_role(wanted)
        except DatabaseError:
            # Two processes setting the role up at once (CREATE ROLE races, "tuple
            # concurrently updated"): the second try finds the first one's work.
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _ensure_role(relations: list[str]) -> RoleReport:
    role = datachat_settings.ROLE
    report = RoleReport(role)
    with transaction.atomic(), connection.cursor() as cursor:
        raw = connection.connection

        def run(statement: sql.Composable) -> None:
            cursor.execute(statement.as_string(raw))

        name = sql.Identifier(role)
        cursor.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role])
        verb = "ALTER" if cursor.fetchone() else "CREATE"
        report.created = verb == "CREATE"
        attributes = sql.SQL(
            "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS INHERIT"
        )
        password = datachat_settings.ROLE_PASSWORD
        secret = sql.SQL(" PASSWORD {}").format(sql.Literal(password)) if password else sql.SQL("")
        run(sql.SQL("{} ROLE {} {}{}").format(sql.SQL(verb), name, attributes, secret))
        for setting, value in (
            ("default_transaction_read_only", "on"),
            ("statement_timeout", str(int(datachat_settings.STATEMENT_TIMEOUT_MS))),
            (
                "idle_in_transaction_session_timeout",
                str(int(datachat_settings.IDLE_IN_TRANSACTION_TIMEOUT_MS)),
            ),
        ):
            run(
                sql.SQL("ALTER ROLE {} SET {} = {}").format(
                    name, sql.Identifier(setting), sql.Literal(value)
                )
            )
        run(
            sql.SQL("GRANT CONNECT ON DATABASE {} TO {}").format(
                sql.Identifier(connection.settings_dict["NAME"]), name
            )
        )
        schemas = {"public"}
        present = []
        for relation in relations:
            schema, _, table = relation.rpartition(".")
            cursor.execute("SELECT to_regclass(%s)", [relation])
            if cursor.fetchone()[0] is None:
                report.missing.append(relation)
                continue
            schemas.add(schema or "public")
            present.append(sql.Identifier(schema, table) if schema else sql.Identifier(table))
            report.granted.append(relation)
        for schema in sorted(schemas):
            run(
                sql.SQL("REVOKE ALL ON ALL TABLES IN SCHEMA {} FROM {}").format(
                    sql.Identifier(schema), name
                )
            )
            run(
                sql.SQL("REVOKE ALL ON ALL SEQUENCES IN SCHEMA {} FROM {}").format(
                    sql.Identifier(schema), name
                )
            )
            run(sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), name))
        for relation_name in present:
            run(sql.SQL("GRANT SELECT ON TABLE {} TO {}").format(relation_name, name))
    return report


def manages_role() -> bool:
    """``MANAGE_ROLE``; None (the default) means on only for the embedded Postgres (no
    ``DATABASE_URL`` in the environment)."""
    setting = datachat_settings.MANAGE_ROLE
    return not os.environ.get("DATABASE_URL") if setting is None else bool(setting)


def ensure_role_after_migrate(*, using: str = DEFAULT_DB_ALIAS, **kwargs: Any) -> None:
    """``post_migrate`` receiver: :func:`ensure_role` after a ``migrate`` (not after the
    ``flush`` of a test, which sends the signal without a ``plan``). Where the setting is left
    to its default, a server that refuses is a warning, not a failed migration."""
    if using != DEFAULT_DB_ALIAS or "plan" not in kwargs or not manages_role():
        return
    try:
        ensure_role()
    except DatabaseError:
        if datachat_settings.MANAGE_ROLE:
            raise
        logger.warning("Could not set up the data chat role; run manage.py datachat_role.")
