"""System checks of the runtime's setup."""

from django.db.utils import ConnectionHandler

from automate_core import checks


def test_a_postgres_default_database_passes():
    assert checks.postgres_database() == []


def test_another_default_database_is_refused_before_anything_runs(monkeypatch):
    sqlite = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3"}})
    monkeypatch.setattr(checks, "connections", sqlite)
    [error] = checks.postgres_database()
    assert error.id == "automate.E001"
    assert "sqlite" in error.msg
