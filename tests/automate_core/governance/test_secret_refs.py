"""SecretRefs: finding and resolving ``{"$secret": NAME}`` / ``"$secret:NAME"`` in configs."""

from __future__ import annotations

import copy

import pytest
from django.test import override_settings

from automate_core import plugins
from automate_core.errors import AutomateError
from automate_core.governance import secrets
from automate_core.governance.redaction import REDACTED, redact, redact_text, secret_scope
from automate_core.governance.secrets import (
    EnvironmentSecretsBackend,
    InvalidSecretRefError,
    SecretNotFoundError,
    SecretRef,
    SecretsBackend,
    find_secret_refs,
    get_secret,
    resolve_secrets,
)

STRIPE = "stripe-value-from-the-environment"
GITHUB = "gh-token-value-from-the-environment"


@pytest.fixture(autouse=True)
def isolated_secret_values():
    """Values registered outside a scope last for the whole context: keep tests apart."""
    with secret_scope():
        yield


@pytest.fixture(autouse=True)
def environment(monkeypatch):
    monkeypatch.setenv("AUTOMATE_SECRET_STRIPE_KEY", STRIPE)
    monkeypatch.setenv("AUTOMATE_SECRET_GITHUB_TOKEN", GITHUB)
    monkeypatch.setenv("PLATFORM_ONLY", "not-for-workflows")


def connector_config() -> dict:
    return {
        "url": "https://api.stripe.com/v1/charges",
        "headers": {"Authorization": {"$secret": "STRIPE_KEY"}, "Accept": "application/json"},
        "steps": [
            {"token": "$secret:GITHUB_TOKEN", "repeat": ("$secret:STRIPE_KEY", 3)},
            "plain",
        ],
        "retries": 2,
    }


# -- finding refs ------------------------------------------------------------------------------


def test_find_secret_refs_lists_each_name_once_in_order_of_use():
    assert find_secret_refs(connector_config()) == ["STRIPE_KEY", "GITHUB_TOKEN"]


def test_find_secret_refs_reads_no_values(monkeypatch):
    monkeypatch.delenv("AUTOMATE_SECRET_STRIPE_KEY")
    assert find_secret_refs({"k": {"$secret": "STRIPE_KEY"}}) == ["STRIPE_KEY"]


@pytest.mark.parametrize(
    ("config", "path"),
    [
        ({"a": {"$secret": "X", "default": "y"}}, "$.a"),
        ({"a": [{"$secret": ""}]}, "$.a[0]"),
        ({"a": {"$secret": 42}}, "$.a"),
        ({"a": "$secret:"}, "$.a"),
        ({"a": "$secret:has space"}, "$.a"),
        ({"a": "$secret:-leading-dash"}, "$.a"),
    ],
)
def test_malformed_refs_are_refused_with_their_path(config, path):
    with pytest.raises(InvalidSecretRefError) as caught:
        find_secret_refs(config)

    assert caught.value.details == {"path": path}
    assert str(caught.value).startswith(f"{path}: ")


def test_secret_ref_parses_both_forms():
    assert SecretRef.parse({"$secret": "vault/prod.stripe-key"}) == SecretRef(
        "vault/prod.stripe-key"
    )
    assert SecretRef.parse("$secret:STRIPE_KEY") == SecretRef("STRIPE_KEY")
    assert SecretRef.parse("not a ref") is None
    assert SecretRef.parse({"secret": "X"}) is None
    assert SecretRef("X").to_json() == {"$secret": "X"}


# -- resolving ---------------------------------------------------------------------------------


def test_resolve_secrets_replaces_refs_in_a_new_structure():
    config = connector_config()
    before = copy.deepcopy(config)

    resolved = resolve_secrets(config)

    assert resolved == {
        "url": "https://api.stripe.com/v1/charges",
        "headers": {"Authorization": STRIPE, "Accept": "application/json"},
        "steps": [{"token": GITHUB, "repeat": (STRIPE, 3)}, "plain"],
        "retries": 2,
    }
    assert config == before
    assert resolved["headers"] is not config["headers"]


def test_a_config_without_refs_still_comes_back_as_a_copy():
    config = {"a": [1, {"b": 2}]}

    resolved = resolve_secrets(config)

    assert resolved == config
    assert resolved is not config
    assert resolved["a"][1] is not config["a"][1]


def test_an_escaped_ref_is_a_literal_string():
    assert resolve_secrets({"note": "$$secret:STRIPE_KEY"}) == {"note": "$secret:STRIPE_KEY"}
    assert find_secret_refs({"note": "$$secret:STRIPE_KEY"}) == []


def test_resolved_values_are_scrubbed_by_the_redactor():
    with secret_scope():
        resolved = resolve_secrets(connector_config())
        # The value would pass the credential patterns; only the registry knows it.
        logged = redact_text(f"POST with {GITHUB} and {resolved['headers']['Authorization']}")
        step_output = redact({"echo": f"server said {GITHUB}"})

    assert logged == f"POST with {REDACTED} and {REDACTED}"
    assert step_output == {"echo": f"server said {REDACTED}"}
    assert redact_text(GITHUB) == GITHUB  # forgotten with the scope


@pytest.mark.django_db  # the db backend is asked too, by default
def test_missing_secrets_are_all_named_and_no_value_leaks():
    config = {
        "a": "$secret:STRIPE_KEY",
        "b": "$secret:MISSING_ONE",
        "c": {"$secret": "MISSING_TWO"},
    }

    with secret_scope(), pytest.raises(SecretNotFoundError) as caught:
        resolve_secrets(config)

    message = str(caught.value)
    assert "MISSING_ONE" in message and "MISSING_TWO" in message
    assert STRIPE not in message
    assert caught.value.details == {"refs": ["MISSING_ONE", "MISSING_TWO"]}


def test_secret_not_found_is_a_lookup_error_and_an_api_error():
    error = SecretNotFoundError("secret 'X' not found")
    assert isinstance(error, LookupError)
    assert isinstance(error, AutomateError)
    assert (error.code, error.status_code) == ("secret_not_found", 400)


@pytest.mark.django_db  # the db backend is asked too, by default
def test_the_environment_backend_only_reads_prefixed_variables():
    with pytest.raises(SecretNotFoundError, match="AUTOMATE_SECRET_PLATFORM_ONLY"):
        resolve_secrets({"a": "$secret:PLATFORM_ONLY"})


def test_an_empty_prefix_exposes_the_whole_environment():
    with override_settings(AUTOMATE={"SECRETS_ENV_PREFIX": ""}):
        assert resolve_secrets({"a": "$secret:PLATFORM_ONLY"}) == {"a": "not-for-workflows"}


def test_get_secret_keeps_working_without_registering_the_value():
    with secret_scope():
        assert get_secret("STRIPE_KEY") == STRIPE
        assert redact_text(STRIPE) == STRIPE


# -- backends ----------------------------------------------------------------------------------


class TenantVault(SecretsBackend):
    """A backend with per-tenant storage, as a plugin would provide."""

    store = {("acme", "STRIPE_KEY"): "sk_acme_only_value_123"}
    calls: list = []

    def get_secret(self, key, *, tenant=None):
        self.calls.append((key, tenant))
        try:
            return self.store[(getattr(tenant, "slug", None), key)]
        except KeyError:
            raise SecretNotFoundError(f"secret {key!r} not found in vault") from None


@pytest.fixture
def vault_first(monkeypatch):
    real_load = plugins.load

    def load(kind, name):
        if (kind, name) == ("secrets.backends", "vault"):
            return TenantVault
        return real_load(kind, name)

    monkeypatch.setattr(secrets.plugins, "load", load)
    TenantVault.calls = []
    with override_settings(AUTOMATE={"SECRETS_BACKENDS": ["vault", "env"]}):
        yield


@pytest.mark.django_db
def test_backends_are_tried_in_order_and_receive_the_tenant(vault_first, tenant, other_tenant):
    config = {"key": "$secret:STRIPE_KEY"}

    assert resolve_secrets(config, tenant=tenant) == {"key": "sk_acme_only_value_123"}
    assert resolve_secrets(config, tenant=other_tenant) == {"key": STRIPE}  # falls through to env
    assert TenantVault.calls == [("STRIPE_KEY", tenant), ("STRIPE_KEY", other_tenant)]


def test_the_environment_backend_ignores_the_tenant():
    assert EnvironmentSecretsBackend().get_secret("STRIPE_KEY", tenant=object()) == STRIPE
