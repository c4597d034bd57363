"""Fixtures that build state through the public services. The LLM wire servers and the
providers pointed at them come from the plugin :mod:`automate_llm.testing.fixtures`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.asgi import get_asgi_application
from django.db import connections
from rest_framework.test import APIClient

from automate_core.tenancy.models import APIKey, Tenant
from automate_core.testing.live_server import serve_asgi

pytest_plugins = ["automate_llm.testing.fixtures"]


@pytest.fixture(scope="session", autouse=True)
def _close_rag_workers(django_db_setup: None) -> Iterator[None]:
    """Hybrid queries outside a transaction leave worker connections open (rag.beside); they
    must close before the test database is dropped."""
    yield
    from rag import beside

    beside.close_connections()


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


@pytest.fixture
def asgi_url(monkeypatch) -> Iterator[str]:
    """The project's ASGI application served by uvicorn on a loopback port, as in production."""
    pytest.importorskip("uvicorn")
    # The server's request threads must not keep connections to the test database open.
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    with serve_asgi(get_asgi_application()) as url:
        yield url
