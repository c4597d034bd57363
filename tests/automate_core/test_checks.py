"""System checks of the runtime's setup."""

from django.core.checks import run_checks
from django.db.utils import ConnectionHandler
from django.test import override_settings

from automate_core import checks


def test_a_postgres_default_database_passes():
    assert checks.postgres_database() == []


def test_another_default_database_is_refused_before_anything_runs(monkeypatch):
    sqlite = ConnectionHandler({"default": {"ENGINE": "django.db.backends.sqlite3"}})
    monkeypatch.setattr(checks, "connections", sqlite)
    [error] = checks.postgres_database()
    assert error.id == "automate.E001"
    assert "sqlite" in error.msg


@override_settings(AUTOMATE={"MAX_PAGE_SIZ": 7})
def test_a_mistyped_key_warns_naming_the_closest_known_one():
    [warning] = checks.unknown_settings_keys()
    assert warning.id == "automate.W001"
    assert "AUTOMATE['MAX_PAGE_SIZ']" in warning.msg
    assert warning.hint == "Did you mean 'MAX_PAGE_SIZE'?"


@override_settings(AUTOMATE_RAG={"CHUNK_TOKEN": 100}, AUTOMATE_LLM={"TIMEOUT": 5})
def test_an_apps_settings_are_checked_against_its_own_keys():
    [warning] = checks.unknown_settings_keys()
    assert "AUTOMATE_RAG['CHUNK_TOKEN']" in warning.msg
    assert warning.hint == "Did you mean 'CHUNK_TOKENS'?"


@override_settings(AUTOMATE={"MAX_PAGE_SIZE": 7}, AUTOMATE_LLM={"TIMEOUT": 5})
def test_known_keys_raise_no_warning():
    assert checks.unknown_settings_keys() == []


@override_settings(AUTOMATE_RAGG={"CHUNK_TOKENS": 100})
def test_a_settings_dict_no_installed_app_reads_warns_naming_the_closest_one():
    [warning] = checks.unknown_settings_keys()
    assert warning.id == "automate.W003"
    assert "settings.AUTOMATE_RAGG" in warning.msg
    assert warning.hint == "Did you mean 'AUTOMATE_RAG'?"


@override_settings(AUTOMATE={"MAX_PAGE_SIZ": 7})
def test_manage_py_check_reports_unknown_keys():
    assert "automate.W001" in [message.id for message in run_checks()]
