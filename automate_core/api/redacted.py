"""Payloads in API responses are redacted unless the caller may see them raw.

Users need the ``automate_core.view_raw_payload`` permission; API keys need the explicit scope
``payloads:raw`` (an unscoped key does not imply it).
"""

from __future__ import annotations

from typing import Any, ClassVar

from rest_framework import serializers
from rest_framework.request import Request

from automate_core.governance.redaction import redact
from automate_core.tenancy.models import APIKey

RAW_PAYLOAD_PERMISSION = "automate_core.view_raw_payload"
RAW_PAYLOAD_SCOPE = "payloads:raw"


def may_view_raw(request: Request | None) -> bool:
    if request is None:
        return False
    if isinstance(request.auth, APIKey):
        return RAW_PAYLOAD_SCOPE in request.auth.scopes
    user = getattr(request, "user", None)
    return bool(user is not None and user.has_perm(RAW_PAYLOAD_PERMISSION))


class RedactedPayloadsMixin(serializers.Serializer):
    """Redacts ``redacted_fields`` of the representation for callers without raw access."""

    redacted_fields: ClassVar[tuple[str, ...]] = ()

    def to_representation(self, instance: Any) -> Any:
        data = super().to_representation(instance)
        if not may_view_raw(self.context.get("request")):
            for name in self.redacted_fields:
                if name in data:
                    data[name] = redact(data[name])
        return data
