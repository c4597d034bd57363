"""Signed inbound webhooks: ``POST /api/v1/webhooks/<source>``.

The sender signs ``"<timestamp>.<raw body>"`` with HMAC-SHA256 under the source's secret and
sends ``X-Automate-Timestamp`` and ``X-Automate-Signature: sha256=<hex>``. Requests older or
newer than the replay window, or with a wrong signature, are refused before anything is stored.
"""

from __future__ import annotations

import hashlib
import hmac
import time

from automate_core.errors import AutomateError

REPLAY_WINDOW_SECONDS = 300


class WebhookSignatureInvalid(AutomateError):
    status_code = 401
    code = "invalid_signature"
    default_message = "The webhook signature is missing, stale or wrong."


def sign(secret: str, timestamp: str, body: bytes) -> str:
    digest = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + digest.hexdigest()


def verify(secret: str, timestamp: str | None, signature: str | None, body: bytes) -> None:
    """Raise :class:`WebhookSignatureInvalid` unless the signature is fresh and right."""
    if not timestamp or not signature:
        raise WebhookSignatureInvalid("X-Automate-Timestamp and X-Automate-Signature are required")
    try:
        sent = int(timestamp)
    except ValueError:
        raise WebhookSignatureInvalid("X-Automate-Timestamp must be unix seconds") from None
    if abs(time.time() - sent) > REPLAY_WINDOW_SECONDS:
        raise WebhookSignatureInvalid("The timestamp is outside the 5-minute replay window")
    if not hmac.compare_digest(sign(secret, timestamp, body), signature.strip()):
        raise WebhookSignatureInvalid()
