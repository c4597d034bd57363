"""Authentication of MCP servers: a bearer token and extra headers, from SecretRefs, or
OAuth 2.1 (``"oauth"``, see :mod:`mcp_bridge.oauth`).

``auth_config`` is stored with the server and shown in the admin and API, so a credential in it
must be a SecretRef (``{"$secret": "NAME"}``); values are resolved only when a session opens,
in a structure that is never stored, and registered with the redactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from django.core.exceptions import ValidationError

from automate_core.governance.secrets import find_secret_refs, resolve_secrets

if TYPE_CHECKING:
    from automate_core.tenancy.models import Tenant

KNOWN_KEYS = {"bearer", "headers", "oauth"}


def check_auth_config(config: Any) -> None:
    """Raise ValidationError unless ``config`` is ``{"bearer": ref, "headers": {name: value},
    "oauth": {...}}`` with the bearer token a SecretRef (header values may be plain, such as a
    version header) and ``oauth`` as :func:`mcp_bridge.oauth.check_oauth_config` wants it."""
    if not isinstance(config, Mapping):
        raise ValidationError("auth_config must be an object")
    unknown = set(config) - KNOWN_KEYS
    if unknown:
        raise ValidationError(f"unknown auth_config keys: {', '.join(sorted(unknown))}")
    bearer = config.get("bearer")
    if bearer is not None and not find_secret_refs(bearer):
        raise ValidationError('"bearer" must be a SecretRef such as {"$secret": "NAME"}')
    headers = config.get("headers", {})
    if not isinstance(headers, Mapping) or not all(isinstance(k, str) for k in headers):
        raise ValidationError('"headers" must be an object of header names to values')
    for name in headers:
        if name.lower() == "authorization" and not find_secret_refs(headers[name]):
            raise ValidationError("the Authorization header must be a SecretRef")
    if "oauth" in config:
        from mcp_bridge.oauth import check_oauth_config

        check_oauth_config(config["oauth"])


def auth_headers(config: Mapping[str, Any], tenant: Tenant | None) -> dict[str, str]:
    """The headers to send, with every SecretRef resolved for ``tenant``."""
    resolved = resolve_secrets({k: v for k, v in (config or {}).items() if k != "oauth"}, tenant)
    headers = {str(k): str(v) for k, v in (resolved.get("headers") or {}).items()}
    if resolved.get("bearer"):
        headers["Authorization"] = f"Bearer {resolved['bearer']}"
    return headers
