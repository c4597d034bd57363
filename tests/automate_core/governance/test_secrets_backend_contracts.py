"""The built-in secrets backends keep the contract every backend plugin is tested against."""

from __future__ import annotations

import pytest

from automate_core.governance.secrets import EnvironmentSecretsBackend
from automate_core.governance.stored_secrets import DatabaseSecretsBackend, set_secret
from automate_core.tenancy.models import Tenant
from automate_core.testing.contracts import SecretsBackendContractTest, StoreSecret


class TestEnvironmentSecretsBackend(SecretsBackendContractTest):
    backend_class = EnvironmentSecretsBackend
    backend_name = "env"

    @pytest.fixture
    def store_secret(self, monkeypatch: pytest.MonkeyPatch) -> StoreSecret:
        return lambda name, value, tenant: monkeypatch.setenv(f"AUTOMATE_SECRET_{name}", value)


class TestDatabaseSecretsBackend(SecretsBackendContractTest):
    backend_class = DatabaseSecretsBackend
    backend_name = "db"
    per_tenant = True

    @pytest.fixture
    def store_secret(self, db: None) -> StoreSecret:
        def store(name: str, value: str, tenant: Tenant | None) -> None:
            set_secret(name, value, tenant=tenant)

        return store
