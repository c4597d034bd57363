"""OAuth 2.1 against a real SDK server with the SDK's server-side auth on loopback: the server
refuses a request without a token; our client obtains one (client credentials, or a person's
sign-in through the admin), refreshes it when it expires, and keeps it only encrypted in the
tenant's secrets."""

from __future__ import annotations

from collections.abc import Iterator

import httpx2
import pytest
from django.core.exceptions import ValidationError
from django.urls import reverse

from automate_core.governance.models import AuditLog, StoredSecret
from automate_core.governance.stored_secrets import set_secret
from mcp_bridge.auth import check_auth_config
from mcp_bridge.models import MCPServer
from mcp_bridge.oauth import token_secret_name
from mcp_bridge.testing import AuthorizationServer, SignInServer, ToolServer

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


def test_a_client_metadata_url_must_be_https_with_a_path_for_a_sign_in():
    sign_in = {"grant": "authorization_code"}
    check_auth_config(
        {"oauth": {**sign_in, "client_metadata_url": "https://tools.example.com/client.json"}}
    )
    for bad in ("http://tools.example.com/client.json", "https://tools.example.com/"):
        with pytest.raises(ValidationError, match="client_metadata_url"):
            check_auth_config({"oauth": {**sign_in, "client_metadata_url": bad}})


def test_a_person_signs_in_through_the_admin_and_calls_then_use_the_stored_token(
    tenant, admin_client, allow_loopback
):
    sign_in = SignInServer()
    tools = ToolServer("signed")
    tools.add(add)
    with tools.serving(sign_in=sign_in) as url:
        row = MCPServer.objects.create(
            tenant=tenant,
            name="Signed",
            url=url,
            auto_approve_new=True,
            auth_config={"oauth": {"grant": "authorization_code"}},
        )
        changelist = reverse("admin:mcp_bridge_mcpserver_changelist")

        started = admin_client.post(
            changelist, {"action": "authorize_oauth", "_selected_action": [row.pk]}
        )
        consent = httpx2.get(started["Location"])  # the browser at the authorization server
        callback = admin_client.get(consent.headers["location"].split("testserver", 1)[-1])
        row.sync_tools()

    assert started.status_code == 302 and started["Location"].startswith(url.removesuffix("/mcp"))
    assert callback["Location"] == reverse("admin:mcp_bridge_mcpserver_change", args=[row.pk])
    assert row.tools.get(name="add").status == "approved"
    stored = StoredSecret.objects.get(tenant=tenant, name=token_secret_name(row.pk))
    assert not any(token in stored.ciphertext for token in sign_in.access_tokens)
    assert any(token in stored.decrypt() for token in sign_in.access_tokens)
    assert AuditLog.objects.filter(action="mcp.server.oauth_authorized").exists()
