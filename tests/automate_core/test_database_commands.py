"""Commands that need the project's tables say how to create them instead of a traceback."""

import os
import subprocess
import sys
import uuid
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from django.conf import settings
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.db import connection

from automate_core.governance.models import AuditLog
from automate_core.management.base import DatabaseCommand

ROOT = Path(__file__).resolve().parents[2]
DATABASE_COMMANDS = {
    "automate_core": [
        "automate_audit_verify",
        "automate_demo",
        "automate_prune",
        "automate_rotate_secret_keys",
        "automate_worker",
    ],
    "rag": ["rag_eval", "rag_sync"],
}


@pytest.fixture
def empty_database():
    """A database on the same server with no tables: what ``createdb`` gives."""
    name = f"unmigrated_{uuid.uuid4().hex[:12]}"
    server = psycopg.connect(settings.DATABASE_URL, autocommit=True)
    server.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(settings.DATABASE_URL)._replace(path=f"/{name}"))
    finally:
        server.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        server.close()


def test_the_worker_on_an_unmigrated_database_says_to_migrate_instead_of_a_traceback(
    empty_database,
):
    env = {
        **os.environ,
        "DATABASE_URL": empty_database,
        "REDIS_URL": settings.REDIS_URL,
        "DJANGO_SETTINGS_MODULE": "automate_site.settings",
    }
    result = subprocess.run(
        [sys.executable, "manage.py", "automate_worker", "--once"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1
    assert "run `make run` or `manage.py migrate` first" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.django_db
def test_a_query_on_a_missing_table_is_a_command_error_naming_it():
    table = AuditLog._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"DROP TABLE {table} CASCADE")  # undone when the test's transaction ends
    with pytest.raises(CommandError, match=f'"{table}" does not exist: run `make run`'):
        call_command("automate_audit_verify")


@pytest.mark.parametrize(
    ("app", "name"), [(app, name) for app, names in DATABASE_COMMANDS.items() for name in names]
)
def test_every_command_that_needs_the_database_checks_its_tables_first(app, name):
    assert isinstance(load_command_class(app, name), DatabaseCommand)
