"""Plugins come from entry points; app settings come from one namespaced dict with defaults."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from automate_core import plugins
from automate_core.conf import AppSettings, automate_settings
from automate_core.governance.secrets import EnvironmentSecretsBackend


def test_built_in_plugins_are_registered_through_entry_points():
    assert "env" in plugins.available("secrets.backends")
    assert plugins.load("secrets.backends", "env") is EnvironmentSecretsBackend


def test_missing_plugin_error_names_the_plugin_group_and_choices():
    with pytest.raises(plugins.PluginNotFound) as info:
        plugins.load("secrets.backends", "vault")
    message = str(info.value)
    assert "'vault'" in message
    assert "django_automate.secrets.backends" in message
    assert "env" in message


def test_unknown_kind_has_no_plugins():
    with pytest.raises(plugins.PluginNotFound, match="none installed"):
        plugins.load("no.such.kind", "x")


def test_settings_fall_back_to_defaults():
    assert automate_settings.MAX_PAGE_SIZE == 200


def test_user_settings_override_defaults_and_reload_in_tests():
    with override_settings(AUTOMATE={"MAX_PAGE_SIZE": 7}):
        assert automate_settings.MAX_PAGE_SIZE == 7
    assert automate_settings.MAX_PAGE_SIZE == 200


def test_unknown_setting_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="Invalid AUTOMATE setting"):
        _ = automate_settings.NO_SUCH_SETTING


def test_unknown_user_keys_are_reported():
    with override_settings(AUTOMATE={"MAX_PAGE_SIZ": 7}):
        assert automate_settings.unknown_keys() == {"MAX_PAGE_SIZ"}


def test_dotted_paths_are_imported_lazily_with_a_clear_error():
    app = AppSettings("AUTOMATE_TEST", {"BACKEND": "json.dumps"}, import_strings=["BACKEND"])
    import json

    assert app.BACKEND is json.dumps
    with (
        override_settings(AUTOMATE_TEST={"BACKEND": "nope.missing"}),
        pytest.raises(ImproperlyConfigured, match="AUTOMATE_TEST\\['BACKEND'\\]"),
    ):
        _ = app.BACKEND
