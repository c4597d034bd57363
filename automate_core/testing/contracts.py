"""Contract tests for plugins. Subclass, fill in the class attributes, and pytest runs them.

.. code-block:: python

    class TestMyConnector(ConnectorContractTest):
        connector_class = MyConnector
        valid_config = {"base_url": "https://api.example.com", "token": "x"}
        invalid_configs = [{}]
        sample_action, sample_params = "ping", {}


    class TestMySecretsBackend(SecretsBackendContractTest):
        backend_class = VaultSecretsBackend
        backend_name = "vault"

        @pytest.fixture
        def store_secret(self, vault):
            return lambda name, value, tenant=None: vault.write(name, value)
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import pytest

from automate_core import plugins
from automate_core.connectors.base import (
    ConnectorAdapter,
    ConnectorConfigError,
    ConnectorContext,
    ConnectorError,
    ConnectorResult,
)
from automate_core.governance.secrets import SecretNotFoundError, SecretsBackend
from automate_core.tenancy.models import Tenant

#: ``store_secret(name, value, tenant)``: puts a secret where a backend reads it.
StoreSecret = Callable[[str, str, Tenant | None], None]


class ConnectorContractTest:
    connector_class: ClassVar[type[ConnectorAdapter]]
    valid_config: ClassVar[Mapping[str, Any]] = {}
    invalid_configs: ClassVar[list[Mapping[str, Any]]] = []
    sample_action: ClassVar[str]
    sample_params: ClassVar[Mapping[str, Any]] = {}
    # Values of valid_config that must never show in repr() or results (secrets).
    secret_values: ClassVar[list[str]] = []

    def make_context(self, **overrides: Any) -> ConnectorContext:
        values: dict[str, Any] = {"idempotency_key": "exec-1:step-1", "trace_id": "trace-contract"}
        values.update(overrides)
        return ConnectorContext(**values)

    def make_connector(self) -> ConnectorAdapter:
        return self.connector_class(self.valid_config)

    def test_declares_code_name_and_actions(self) -> None:
        cls = self.connector_class
        assert cls.code and cls.name
        assert self.sample_action in cls.actions

    def test_is_registered_under_its_code(self) -> None:
        plugins.refresh()
        assert plugins.load("connectors", self.connector_class.code) is self.connector_class

    def test_valid_config_has_no_problems(self) -> None:
        assert self.connector_class.validate_config(self.valid_config) == []

    def test_invalid_configs_are_reported_and_refused(self) -> None:
        for config in self.invalid_configs:
            problems = self.connector_class.validate_config(config)
            assert problems and all(isinstance(p, str) and p for p in problems), config
            with pytest.raises(ConnectorConfigError):
                self.connector_class(config)

    def test_sample_action_returns_a_result(self) -> None:
        result = self.make_connector().execute(
            self.sample_action, self.sample_params, self.make_context()
        )
        assert isinstance(result, ConnectorResult)

    def test_unknown_action_is_a_connector_error(self) -> None:
        with pytest.raises(ConnectorError):
            self.make_connector().execute("no-such-action", {}, self.make_context())

    def test_repr_does_not_show_secrets(self) -> None:
        text = repr(self.make_connector())
        for secret in self.secret_values:
            assert secret not in text


class SecretsBackendContractTest:
    """What :class:`~automate_core.governance.secrets.SecretsBackend` promises the resolver:
    a stored secret resolves, a missing one is :class:`SecretNotFoundError` naming the key and
    no value, and no value shows in the backend's repr or in the log records it writes.

    Override the ``store_secret`` fixture to put a secret where your backend reads it; set
    ``per_tenant`` when the backend keeps each tenant's secrets apart.
    """

    backend_class: ClassVar[type[SecretsBackend]]
    #: The entry-point name in ``django_automate.secrets.backends``.
    backend_name: ClassVar[str]
    per_tenant: ClassVar[bool] = False
    secret_value: ClassVar[str] = "contract-secret-value-0123456789"  # noqa: S105  (a test value)

    @pytest.fixture
    def store_secret(self) -> StoreSecret:
        raise NotImplementedError("override the store_secret fixture")

    @pytest.fixture
    def backend(self, store_secret: StoreSecret) -> SecretsBackend:
        """The backend under test; it asks for ``store_secret``, so what that needs (a
        database, a server) is there in every test."""
        return self.backend_class()

    def test_is_registered_under_its_name(self) -> None:
        plugins.refresh()
        assert plugins.load("secrets.backends", self.backend_name) is self.backend_class

    def test_a_stored_secret_resolves_to_its_value(
        self, backend: SecretsBackend, store_secret: StoreSecret
    ) -> None:
        store_secret("CONTRACT_TOKEN", self.secret_value, None)

        assert backend.get_secret("CONTRACT_TOKEN") == self.secret_value

    def test_a_missing_secret_is_not_found_naming_the_key(self, backend: SecretsBackend) -> None:
        with pytest.raises(SecretNotFoundError, match="CONTRACT_MISSING"):
            backend.get_secret("CONTRACT_MISSING")

    def test_not_found_shows_no_stored_value(
        self, backend: SecretsBackend, store_secret: StoreSecret
    ) -> None:
        store_secret("CONTRACT_TOKEN", self.secret_value, None)

        with pytest.raises(SecretNotFoundError) as caught:
            backend.get_secret("CONTRACT_TOKEN_2")

        assert self.secret_value not in f"{caught.value} {caught.value.details!r}"

    def test_repr_and_logs_show_no_secret(
        self,
        backend: SecretsBackend,
        store_secret: StoreSecret,
        caplog: pytest.LogCaptureFixture,
    ) -> None:
        store_secret("CONTRACT_TOKEN", self.secret_value, None)

        with caplog.at_level(logging.DEBUG):
            backend.get_secret("CONTRACT_TOKEN")

        assert self.secret_value not in f"{backend!r} {backend}"
        assert self.secret_value not in caplog.text

    @pytest.mark.django_db
    def test_a_tenants_secret_is_not_resolved_for_another_tenant(
        self, backend: SecretsBackend, store_secret: StoreSecret
    ) -> None:
        if not self.per_tenant:
            pytest.skip("the backend does not keep tenants apart")
        owner = Tenant.objects.create(name="Contract owner", slug="contract-owner")
        other = Tenant.objects.create(name="Contract other", slug="contract-other")
        store_secret("CONTRACT_TOKEN", self.secret_value, owner)

        assert backend.get_secret("CONTRACT_TOKEN", tenant=owner) == self.secret_value
        with pytest.raises(SecretNotFoundError):
            backend.get_secret("CONTRACT_TOKEN", tenant=other)
