"""``manage.py mcp_conformance_client URL``: our MCP client as the conformance suite drives it
(``@modelcontextprotocol/conformance client --command ...``).

The suite starts a scenario server and runs this command with its URL; the scenario's name is
in ``MCP_CONFORMANCE_SCENARIO``. The session is opened by :mod:`mcp_bridge.client` (the same
code a tool call uses, egress policy included: loopback is allowed for this command only).
"""

from __future__ import annotations

import os
from typing import Any

from django.core.management.base import BaseCommand
from django.test.utils import override_settings

from mcp_bridge import client

#: Scenario -> (tool to call, its arguments); others only initialize and list tools.
CALLS = {"tools_call": ("add_numbers", {"a": 2, "b": 3}), "sse-retry": ("test_reconnection", {})}


class Command(BaseCommand):
    help = "Run our MCP client against a conformance scenario server (MCP_CONFORMANCE_SCENARIO)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("url")

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "initialize")
        connection = client.Connection(transport="streamable_http", url=url)

        async def work() -> None:
            async with client.open_session(connection) as session:
                listed = await session.list_tools(cache_mode="refresh")
                names = {tool.name for tool in listed.tools}
                call = CALLS.get(scenario)
                if call is not None and call[0] in names:
                    result = await session.call_tool(call[0], call[1])
                    self.stdout.write(str(result.content))

        allow = {"EGRESS_ALLOW_PRIVATE": ["127.0.0.1", "::1"]}
        with override_settings(AUTOMATE=allow):
            client.run(work, timeout=60)
