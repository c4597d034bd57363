"""Cursor pagination: ?cursor=&limit=, capped, stable while rows are inserted."""

import pytest
from django.test import override_settings

from automate_core.tenancy.models import APIKey

pytestmark = pytest.mark.django_db


def _names(page):
    return [row["name"] for row in page["results"]]


def test_pages_do_not_skip_or_repeat_rows_inserted_between_pages(api_client, tenant, api_key):
    for i in range(6):
        APIKey.issue(tenant=tenant, name=f"key-{i}")
    first = api_client.get("/api/v1/api-keys?limit=3").json()
    for i in range(3):
        APIKey.issue(tenant=tenant, name=f"late-{i}")
    second = api_client.get(first["next"]).json()
    third = api_client.get(second["next"]).json()
    seen = _names(first) + _names(second) + _names(third)
    assert seen == ["key-5", "key-4", "key-3", "key-2", "key-1", "key-0", "test"]
    assert third["next"] is None


def test_limit_is_capped(api_client, tenant):
    for i in range(5):
        APIKey.issue(tenant=tenant, name=f"key-{i}")
    with override_settings(AUTOMATE={"MAX_PAGE_SIZE": 2}):
        page = api_client.get("/api/v1/api-keys?limit=1000").json()
    assert len(page["results"]) == 2


def test_invalid_cursor_is_a_normalized_404(api_client):
    response = api_client.get("/api/v1/api-keys?cursor=bogus")
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"
