"""Public exposures: a tenant's chosen tools at ``/mcp/public/<tenant slug>``, with no key."""

from __future__ import annotations

from typing import Any

import httpx2
import pytest
from mcp import Client

from automate_core.governance.models import AuditLog
from mcp_bridge.models import PublicMCPExposure

from .test_exposure import _automation, _endpoint, _leaves, _session

pytestmark = pytest.mark.django_db(transaction=True)


def _public_names(url: str, slug: str) -> set[str]:
    async def names(client: Client) -> set[str]:
        return {tool.name for tool in (await client.list_tools()).tools}

    return _session(url, None, names, path=f"/mcp/public/{slug}")


@pytest.fixture
def docs(tenant) -> PublicMCPExposure:
    _endpoint(tenant, "docs")
    _automation(tenant)
    return PublicMCPExposure.objects.create(tenant=tenant, tools=["query_docs"])


def test_a_public_exposure_lists_only_what_was_published(site, docs):
    assert _public_names(site, docs.tenant.slug) == {"query_docs"}


def test_a_public_exposure_offers_no_prompts_or_resources(site, docs):
    async def listed(client: Client) -> Any:
        prompts = (await client.list_prompts()).prompts
        templates = (await client.list_resource_templates()).resource_templates
        return prompts, templates

    assert _session(site, None, listed, path=f"/mcp/public/{docs.tenant.slug}") == ([], [])


def test_an_unpublished_tool_is_not_callable_publicly(site, docs):
    async def call(client: Client) -> Any:
        return await client.call_tool("start_greet", {})

    with pytest.raises(BaseException) as raised:
        _session(site, None, call, path=f"/mcp/public/{docs.tenant.slug}")

    assert "No tool 'start_greet'" in str(_leaves(raised.value))


def test_a_published_tool_is_called_and_audited_by_client(site, docs):
    async def call(client: Client) -> Any:
        return await client.call_tool("query_docs", {"query": "refunds"})

    result = _session(site, None, call, path=f"/mcp/public/{docs.tenant.slug}")

    assert result.is_error  # the endpoint has no index yet: the tool's own refusal
    assert "index" in result.content[0].text
    row = AuditLog.objects.get(action="mcp.server.call")
    assert row.actor == f"mcp.public:{docs.pk}:127.0.0.1"


def test_an_unknown_or_inactive_exposure_is_a_404(site, docs):
    docs.is_active = False
    docs.save()

    for slug in ("acme", "nobody"):
        response = httpx2.post(f"{site}/mcp/public/{slug}", json={})
        assert response.status_code == 404


def test_public_clients_are_rate_limited(site, docs):
    docs.rate_limit = "2/min"
    docs.save()

    assert _public_names(site, "acme") == {"query_docs"}
    assert _public_names(site, "acme") == {"query_docs"}
    with pytest.raises(BaseException) as raised:
        _public_names(site, "acme")

    assert "Rate limited" in str(_leaves(raised.value))
