"""``Authorization: Bearer <key>`` authentication with tenant API keys."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from rest_framework import authentication, exceptions
from rest_framework.request import Request

from automate_core.conf import automate_settings
from automate_core.tenancy.models import APIKey


class APIKeyAuthentication(authentication.BaseAuthentication):
    """Sets ``request.auth`` to the APIKey and ``request.user`` to an anonymous user.

    A malformed, unknown, revoked or expired key is a 401: a request that sends a key never
    silently falls back to anonymous access.
    """

    keyword = "Bearer"

    def authenticate(self, request: Request) -> tuple[Any, APIKey] | None:
        header = authentication.get_authorization_header(request).decode("latin-1")
        if not header:
            return None
        scheme, _, raw = header.partition(" ")
        if scheme.lower() != self.keyword.lower():
            return None
        raw = raw.strip()
        if not raw:
            raise exceptions.AuthenticationFailed("Empty bearer token.")
        key = APIKey.authenticate(raw)
        if key is None:
            raise exceptions.AuthenticationFailed("Invalid, revoked or expired API key.")
        key.touch(timedelta(seconds=automate_settings.API_KEY_TOUCH_SECONDS))
        from django.contrib.auth.models import AnonymousUser

        return AnonymousUser(), key

    def authenticate_header(self, request: Request) -> str:
        return f'{self.keyword} realm="api"'


class APIKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "automate_core.api.auth.APIKeyAuthentication"
    name = "apiKey"

    def get_security_definition(self, auto_schema: Any) -> dict[str, str]:
        return {"type": "http", "scheme": "bearer", "description": "A tenant API key (dak_…)."}
