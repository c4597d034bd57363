"""``manage.py mcp_conformance_client URL``: our MCP client as the conformance suite drives it
(``@modelcontextprotocol/conformance client --command ...``).

The suite starts a scenario server and runs this command with its URL; the scenario's name is
in ``MCP_CONFORMANCE_SCENARIO``, its inputs (pre-registered client credentials) in
``MCP_CONFORMANCE_CONTEXT``. The session is opened by :mod:`mcp_bridge.client` (the same
code a tool call uses, egress policy included: loopback is allowed for this command only).
For ``auth/*`` scenarios it carries the SDK's OAuth client as :mod:`mcp_bridge.oauth` builds it
for a server, with the tokens kept in memory and the person's consent played by following the
authorization URL (the suite's authorization server approves at once).
"""

from __future__ import annotations

import dataclasses
import json
import os
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
from django.core.management.base import BaseCommand
from django.test.utils import override_settings
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from mcp_bridge import client

REDIRECT_URI = "http://localhost:3000/callback"
#: The client ID metadata document URL the suite's authorization servers accept as-is (they
#: never fetch it); our client uses it only where a server advertises such documents.
CIMD_CLIENT_METADATA_URL = "https://conformance-test.local/client-metadata.json"


@dataclasses.dataclass
class MemoryTokenStorage:
    """The SDK's ``TokenStorage`` in memory: one command run is one sign-in."""

    tokens: OAuthToken | None = None
    client: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client = client_info


def oauth_for(scenario: str, url: str, context: dict[str, Any]) -> Any:
    """The OAuth client a scenario needs: client credentials, or the authorization code grant
    (pre-registered when the context names a client, else a URL-based client id where the
    server supports client ID metadata documents, else registered dynamically)."""
    secret = context.get("client_secret")
    if scenario.startswith("auth/client-credentials") and secret:
        return ClientCredentialsOAuthProvider(
            url, MemoryTokenStorage(), client_id=context["client_id"], client_secret=secret
        )
    storage = MemoryTokenStorage()
    if context.get("client_id"):
        storage.client = OAuthClientInformationFull(
            client_id=context["client_id"],
            client_secret=secret,
            redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
            token_endpoint_auth_method="client_secret_basic" if secret else "none",
        )
    answer: dict[str, AuthorizationCodeResult] = {}

    async def consent(authorization_url: str) -> None:
        async with httpx2.AsyncClient(timeout=30) as browser:
            back = (await browser.get(authorization_url)).headers["location"]
        query = parse_qs(urlsplit(back).query)
        answer["result"] = AuthorizationCodeResult(
            code=query["code"][0],
            state=next(iter(query.get("state", [])), None),
            iss=next(iter(query.get("iss", [])), None),
        )

    async def callback() -> AuthorizationCodeResult:
        return answer["result"]

    metadata = OAuthClientMetadata(
        client_name="django-automate",
        redirect_uris=[REDIRECT_URI],  # type: ignore[list-item]
        grant_types=["authorization_code", "refresh_token"],
        response_types=["code"],
        token_endpoint_auth_method="none",  # noqa: S106  a public client: no secret at all
    )
    return OAuthClientProvider(
        url, metadata, storage, consent, callback, client_metadata_url=CIMD_CLIENT_METADATA_URL
    )


#: Scenario -> (tool to call, its arguments); others only initialize and list tools.
CALLS = {"tools_call": ("add_numbers", {"a": 2, "b": 3}), "sse-retry": ("test_reconnection", {})}


class Command(BaseCommand):
    help = "Run our MCP client against a conformance scenario server (MCP_CONFORMANCE_SCENARIO)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("url")

    def handle(self, *args: Any, url: str, **options: Any) -> None:
        scenario = os.environ.get("MCP_CONFORMANCE_SCENARIO", "initialize")
        context = json.loads(os.environ.get("MCP_CONFORMANCE_CONTEXT") or "{}")
        auth = oauth_for(scenario, url, context) if scenario.startswith("auth/") else None
        connection = client.Connection(transport="streamable_http", url=url, auth=auth)

        async def work() -> None:
            async with client.open_session(connection) as session:
                listed = await session.list_tools(cache_mode="refresh")
                names = {tool.name for tool in listed.tools}
                call = CALLS.get(scenario)
                if call is None and scenario.startswith("auth/") and listed.tools:
                    call = (listed.tools[0].name, {})  # a call may need more scope (step-up)
                if call is not None and call[0] in names:
                    result = await session.call_tool(call[0], call[1])
                    self.stdout.write(str(result.content))

        allow = {"EGRESS_ALLOW_PRIVATE": ["127.0.0.1", "::1"]}
        with override_settings(AUTOMATE=allow):
            client.run(work, timeout=60)
