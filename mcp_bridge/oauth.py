"""OAuth 2.1 for MCP servers that demand it, through the SDK's OAuth client
(:class:`mcp.client.auth.OAuthClientProvider`, an ``httpx2.Auth`` on the session's client).

``auth_config = {"oauth": {...}}`` chooses it:

* ``"grant": "client_credentials"`` (headless): ``client_id``, ``client_secret`` (a
  SecretRef), ``issuer`` (the authorization server the credentials belong to: they are sent
  nowhere else, and the flow stops if the MCP server points elsewhere), optional ``scope``.
* ``"grant": "authorization_code"``: a person signs in once (:mod:`mcp_bridge.oauth_flow`,
  started by an admin action, completed by the admin's callback view); optional ``client_id``
  and ``client_secret`` (a SecretRef), else the client registers itself (dynamic client
  registration, or, with ``client_metadata_url``, the HTTPS URL of a client ID metadata
  document the operator hosts, used as the client id where the authorization server supports
  such documents); optional ``scope``. Calls then use the stored tokens, refreshed as they
  expire; with none usable, a call fails asking for the sign-in again.

The provider discovers the authorization server from the MCP server's 401 (protected
resource metadata, RFC 9728, then RFC 8414), obtains a token, refreshes it when it expires,
and sends it on every request. Tokens live only in :class:`SecretTokenStorage`: the tenant's
encrypted StoredSecret ``mcp-oauth/<server id>`` (never a plain column, never logged; each
value read or written is registered with the redactor). Every OAuth request goes through the
session's egress-checked client like the MCP requests themselves.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import anyio.to_thread
from django.core.exceptions import ValidationError
from django.db import connections
from mcp.client.auth import OAuthClientProvider
from mcp.client.auth.extensions.client_credentials import ClientCredentialsOAuthProvider
from mcp.client.auth.utils import is_valid_client_metadata_url
from mcp.shared.auth import (
    AuthorizationCodeResult,
    OAuthClientInformationFull,
    OAuthClientMetadata,
    OAuthToken,
)

from automate_core.governance.models import StoredSecret
from automate_core.governance.redaction import register_secret_value
from automate_core.governance.secrets import find_secret_refs, resolve_secrets
from automate_core.governance.stored_secrets import set_secret
from mcp_bridge.errors import MCPConnectionError

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

T = TypeVar("T")

GRANTS = {"client_credentials", "authorization_code"}
KNOWN_KEYS = {"grant", "client_id", "client_secret", "scope", "issuer", "client_metadata_url"}


def check_oauth_config(config: Any) -> None:
    """Raise ValidationError unless ``config`` is a valid ``auth_config["oauth"]``."""
    if not isinstance(config, Mapping):
        raise ValidationError('"oauth" must be an object')
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValidationError(f"unknown oauth keys: {', '.join(sorted(unknown))}")
    if config.get("grant") not in GRANTS:
        raise ValidationError(f'"oauth.grant" must be one of: {", ".join(sorted(GRANTS))}')
    headless = config.get("grant") == "client_credentials"
    for required in ("client_id", "issuer") if headless else ():
        if not config.get(required):
            raise ValidationError(f'"oauth.{required}" is required')
    secret = config.get("client_secret")
    if (headless or secret is not None) and not find_secret_refs(secret):
        raise ValidationError('"oauth.client_secret" must be a SecretRef: {"$secret": "NAME"}')
    metadata_url = config.get("client_metadata_url")
    if metadata_url is not None and (
        headless or not is_valid_client_metadata_url(str(metadata_url))
    ):
        raise ValidationError(
            '"oauth.client_metadata_url" is for the authorization_code grant and must be an '
            "HTTPS URL with a path (the client ID metadata document)"
        )


def token_secret_name(server_id: Any) -> str:
    """The StoredSecret holding the server's tokens and client registration."""
    return f"mcp-oauth/{server_id}"


async def _in_thread(fn: Callable[[], T]) -> T:
    """Database work off the event loop, in a thread whose connection is closed after."""

    def work() -> T:
        try:
            return fn()
        finally:
            connections.close_all()

    return await anyio.to_thread.run_sync(work)


class SecretTokenStorage:
    """The SDK's ``TokenStorage`` over one encrypted StoredSecret of the server's tenant
    (JSON ``{"tokens": ..., "client": ...}``)."""

    def __init__(
        self, server_id: Any, tenant: Tenant, *, client: OAuthClientInformationFull | None = None
    ) -> None:
        self.name = token_secret_name(server_id)
        self.tenant = tenant
        self.client = client  # a pre-registered client, used when none is stored

    def _read(self) -> dict[str, Any]:
        row = StoredSecret.objects.filter(tenant=self.tenant, name=self.name).first()
        if row is None:
            return {}
        stored: dict[str, Any] = json.loads(row.decrypt())
        _register(stored)
        return stored

    def _write(self, key: str, value: dict[str, Any]) -> None:
        stored = {**self._read(), key: value}
        _register(stored)
        set_secret(self.name, json.dumps(stored), tenant=self.tenant, actor="system:mcp.oauth")

    async def get_tokens(self) -> OAuthToken | None:
        tokens = (await _in_thread(self._read)).get("tokens")
        return OAuthToken.model_validate(tokens) if tokens else None

    async def set_tokens(self, tokens: OAuthToken) -> None:
        value = tokens.model_dump(mode="json", exclude_none=True)
        await _in_thread(lambda: self._write("tokens", value))

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        client = (await _in_thread(self._read)).get("client")
        return OAuthClientInformationFull.model_validate(client) if client else self.client

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        value = client_info.model_dump(mode="json", exclude_none=True)
        await _in_thread(lambda: self._write("client", value))


def _register(stored: Mapping[str, Any]) -> None:
    for key in ("access_token", "refresh_token"):
        register_secret_value(str((stored.get("tokens") or {}).get(key) or ""))
    register_secret_value(str((stored.get("client") or {}).get("client_secret") or ""))


class SignInRequired(MCPConnectionError):
    """The server needs a person's sign-in (authorization code grant) and no usable token is
    stored: run the admin's "Authorize with OAuth" action."""

    code = "mcp_oauth_sign_in_required"
    default_message = "Sign in to this MCP server first (admin: Authorize with OAuth)."


async def _no_person(*_: Any) -> Any:
    raise SignInRequired()


def oauth_provider(
    config: Mapping[str, Any],
    *,
    server_id: Any,
    url: str,
    tenant: Tenant,
    redirect_uri: str | None = None,
    redirect_handler: Callable[[str], Awaitable[None]] | None = None,
    callback_handler: Callable[[], Awaitable[AuthorizationCodeResult]] | None = None,
) -> tuple[OAuthClientProvider, str]:
    """The SDK provider for ``auth_config["oauth"]``, and a digest of what it authenticates
    with (so the session pool never lends a session opened with other credentials). For the
    authorization code grant, ``redirect_uri`` and the handlers come from a sign-in
    (:mod:`mcp_bridge.oauth_flow`); without them a needed sign-in raises SignInRequired."""
    resolved = resolve_secrets(dict(config), tenant)
    digest = hashlib.sha256(json.dumps(resolved, sort_keys=True).encode()).hexdigest()
    if resolved.get("grant") == "authorization_code":
        client = None
        if resolved.get("client_id"):
            client = OAuthClientInformationFull(
                client_id=str(resolved["client_id"]),
                client_secret=resolved.get("client_secret") or None,
                redirect_uris=[redirect_uri] if redirect_uri else None,  # type: ignore[list-item]
                token_endpoint_auth_method="client_secret_post"
                if resolved.get("client_secret")
                else "none",
            )
        storage = SecretTokenStorage(server_id, tenant, client=client)
        metadata = OAuthClientMetadata(
            client_name="django-automate",
            redirect_uris=[redirect_uri] if redirect_uri else None,  # type: ignore[list-item]
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            scope=resolved.get("scope") or None,
        )
        provider = OAuthClientProvider(
            url,
            metadata,
            storage,
            redirect_handler=redirect_handler or _no_person,
            callback_handler=callback_handler or _no_person,
            client_metadata_url=resolved.get("client_metadata_url") or None,
        )
        return provider, digest
    provider = ClientCredentialsOAuthProvider(
        url,
        SecretTokenStorage(server_id, tenant),
        client_id=str(resolved["client_id"]),
        client_secret=str(resolved["client_secret"]),
        scope=resolved.get("scope") or None,
        issuer=str(resolved["issuer"]),
    )
    return provider, digest
