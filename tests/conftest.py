"""Fixtures that build state through the public services."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey, Tenant


@pytest.fixture
def tenant(db) -> Tenant:
    return Tenant.objects.create(name="Acme", slug="acme")


@pytest.fixture
def other_tenant(db) -> Tenant:
    return Tenant.objects.create(name="Globex", slug="globex")


@pytest.fixture
def api_key(tenant) -> tuple[APIKey, str]:
    return APIKey.issue(tenant=tenant, name="test")


@pytest.fixture
def api_client(api_key) -> APIClient:
    """An API client authenticated with a fresh, unscoped key of ``tenant``."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {api_key[1]}")
    return client
