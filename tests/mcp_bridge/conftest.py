"""Fixtures of the MCP bridge tests: a real SDK server on loopback that each test changes,
and the tenant's server row pointing at it (loopback allowed by the egress policy, as an
operator would allow a private MCP server)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from django.core.asgi import get_asgi_application
from django.db import connections
from mcp.server.mcpserver.exceptions import ToolError

from automate_core.testing.fake_network import configure_egress
from mcp_bridge.exposure.asgi import MCPMount
from mcp_bridge.models import MCPServer
from mcp_bridge.testing import ToolServer, serve_with_lifespan


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def echo(text: str, shout: bool = False) -> str:
    """Repeat the text."""
    return text.upper() if shout else text


def fail(reason: str) -> str:
    """Always fails (a ToolError's message is what the server sends back)."""
    raise ToolError(f"cannot comply: {reason}")


@pytest.fixture(autouse=True)
def mcp_settings(settings):
    settings.AUTOMATE_MCP = {"CALL_TIMEOUT_SECONDS": 20.0}
    return settings


@pytest.fixture
def site(monkeypatch) -> Iterator[str]:
    """The project's ASGI app (Django with /mcp mounted) on a loopback port, lifespan on."""
    monkeypatch.setitem(connections.settings["default"], "CONN_MAX_AGE", 0)
    with serve_with_lifespan(MCPMount(get_asgi_application())) as url:
        yield url


@pytest.fixture
def allow_loopback(settings) -> None:
    configure_egress(settings, EGRESS_ALLOW_PRIVATE=["127.0.0.1"])


@pytest.fixture
def tool_server() -> Iterator[ToolServer]:
    server = ToolServer()
    server.add(add)
    server.add(echo)
    with server.serving():
        yield server


@pytest.fixture
def server_row(tenant, tool_server, allow_loopback) -> MCPServer:
    return MCPServer.objects.create(tenant=tenant, name="Tools", url=tool_server.url)


@pytest.fixture
def approved_row(server_row) -> MCPServer:
    """The server synced with every tool approved."""
    server_row.auto_approve_new = True
    server_row.save()
    server_row.sync_tools()
    return server_row
