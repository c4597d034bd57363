"""OAuth 2.1 against a real SDK server with the SDK's server-side auth on loopback: the server
refuses a request without a token; our client obtains one (client credentials), refreshes it
when it expires, and keeps it only encrypted in the tenant's secrets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from django.core.exceptions import ValidationError

from automate_core.governance.models import StoredSecret
from automate_core.governance.stored_secrets import set_secret
from mcp_bridge.auth import check_auth_config
from mcp_bridge.models import MCPServer
from mcp_bridge.oauth import token_secret_name
from mcp_bridge.testing import AuthorizationServer, ToolServer

from .conftest import add

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def oauth() -> AuthorizationServer:
    return AuthorizationServer()


@pytest.fixture
def protected(oauth) -> Iterator[str]:
    server = ToolServer("protected")
    server.add(add)
    with server.serving(oauth=oauth) as url:
        yield url


def test_the_server_refuses_a_request_without_a_token(protected):
    response = httpx2.post(protected, json={"jsonrpc": "2.0", "id": 1, "method": "ping"})

    assert response.status_code == 401


def test_client_credentials_obtain_refresh_and_store_the_token_encrypted(
    tenant, oauth, protected, allow_loopback
):
    set_secret("tools-oauth", oauth.client_secret, tenant=tenant)
    row = MCPServer.objects.create(
        tenant=tenant,
        name="Protected",
        url=protected,
        auto_approve_new=True,
        auth_config={
            "oauth": {
                "grant": "client_credentials",
                "client_id": oauth.client_id,
                "client_secret": {"$secret": "tools-oauth"},
                "issuer": protected.removesuffix("/mcp"),
            }
        },
    )

    row.sync_tools()

    assert row.tools.get(name="add").status == "approved"
    assert oauth.grants == ["client_credentials", "refresh_token"]
    stored = StoredSecret.objects.get(tenant=tenant, name=token_secret_name(row.pk))
    assert oauth.issued[-1] not in stored.ciphertext
    assert oauth.issued[-1] in stored.decrypt()


def test_an_oauth_client_secret_must_be_a_secret_ref():
    with pytest.raises(ValidationError, match="SecretRef"):
        check_auth_config(
            {
                "oauth": {
                    "grant": "client_credentials",
                    "client_id": "c",
                    "client_secret": "plain",
                    "issuer": "https://auth.example.com",
                }
            }
        )
