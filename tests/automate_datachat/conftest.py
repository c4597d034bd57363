"""The shop tables (committed, so the executor's own connection sees them), the data chat role
granted on them, and the shop dataset bound to each tenant."""

from __future__ import annotations

import pytest
from django.db import connection
from django.test import override_settings

from automate_core.tenancy.models import Tenant
from automate_datachat import executor
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.registry import unregister_dataset
from automate_datachat.role import ensure_role

from . import shop

#: Short enough that the sleep attacks end quickly.
TEST_SETTINGS = {"STATEMENT_TIMEOUT_MS": 1500}


@pytest.fixture(scope="session")
def shop_tenants(django_db_setup, django_db_blocker) -> tuple[Tenant, Tenant]:
    with django_db_blocker.unblock(), override_settings(AUTOMATE_DATACHAT=TEST_SETTINGS):
        tenant_a, _ = Tenant.objects.get_or_create(slug="shop-a", defaults={"name": "Shop A"})
        tenant_b, _ = Tenant.objects.get_or_create(slug="shop-b", defaults={"name": "Shop B"})
        with connection.cursor() as cursor:
            shop.create_and_seed(cursor, tenant_a.pk, tenant_b.pk)
            cursor.execute(shop.REFERENCE_VIEWS, {"tenant": str(tenant_a.pk)})
        ensure_role(shop.RELATIONS)
        yield tenant_a, tenant_b
        executor.close_connection()


@pytest.fixture(autouse=True)
def datachat_settings(settings):
    settings.AUTOMATE_DATACHAT = TEST_SETTINGS
    return settings


@pytest.fixture
def shop_dataset(shop_tenants) -> DatasetDefinition:
    definition = shop.shop_dataset()
    yield definition
    unregister_dataset("shop")


@pytest.fixture
def dataset_a(shop_dataset, shop_tenants) -> DatasetDefinition:
    return shop_dataset.bind(shop_tenants[0].pk)


@pytest.fixture
def dataset_b(shop_dataset, shop_tenants) -> DatasetDefinition:
    return shop_dataset.bind(shop_tenants[1].pk)


@pytest.fixture
def no_backoff(settings) -> None:
    settings.AUTOMATE_LLM = {"RETRY_BASE_DELAY": 0, "RETRY_MAX_DELAY": 0}


@pytest.fixture
def shop_model(make_wire_provider, wire, shop_tenants, no_backoff):
    """Tenant A's default model, on ``wire`` (each provider's wire server in turn)."""
    return make_wire_provider(
        wire, tenant_=shop_tenants[0], is_default=True, default_model=_model(wire)
    )


def _model(wire) -> str:
    from automate_llm.testing.providers import MODELS

    return MODELS[wire.provider_type]
