"""The ``webhook`` connector: signed outgoing webhooks, and :func:`verify_signature` for receivers.

Each delivery is a JSON POST of ``{"id": <idempotency key>, "event": <event>, "data": <payload>}``
with these headers:

* ``X-Automate-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">``, keyed with
  the config's ``secret``. The timestamp is signed with the body, so a receiver that checks it
  against its clock (:func:`verify_signature`) refuses replays of old deliveries. Every retry
  is signed again with a fresh timestamp.
* ``X-Automate-Event``: the event name, to route before parsing the body.
* ``Idempotency-Key``: the step's key, also the body's ``id``; the same for every retry of a
  step, so a receiver that stores it delivers each event once.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Callable, Mapping
from typing import Any

from automate_core.connectors.base import ConnectorContext, ConnectorResult
from automate_core.connectors.builtin.http import (
    HttpConnectorBase,
    OutboundRequest,
    header_problems,
    invalid_params,
    json_bytes,
    resolved_headers,
    resolved_text,
    text_problems,
    url_problems,
)

__all__ = [
    "EVENT_HEADER",
    "SIGNATURE_HEADER",
    "WebhookConnector",
    "signature_header",
    "verify_signature",
]

SIGNATURE_HEADER = "X-Automate-Signature"
EVENT_HEADER = "X-Automate-Event"
SIGNATURE_VERSION = "v1"
DEFAULT_TOLERANCE = 300
MAX_EVENT_LENGTH = 200


def _key(secret: str | bytes) -> bytes:
    return secret.encode() if isinstance(secret, str) else secret


def _digest(secret: str | bytes, timestamp: int, body: bytes) -> str:
    signed = f"{timestamp}.".encode() + body
    return hmac.new(_key(secret), signed, hashlib.sha256).hexdigest()


def signature_header(
    secret: str | bytes, body: bytes | str, *, timestamp: int | None = None
) -> str:
    """The ``X-Automate-Signature`` value for ``body`` sent at ``timestamp`` (default: now)."""
    when = int(time.time()) if timestamp is None else int(timestamp)
    data = body.encode() if isinstance(body, str) else body
    return f"t={when},{SIGNATURE_VERSION}={_digest(secret, when, data)}"


def verify_signature(
    secret: str | bytes,
    header: str | None,
    body: bytes | str,
    tolerance: float | None = DEFAULT_TOLERANCE,
    *,
    now: float | None = None,
) -> bool:
    """Whether ``header`` (an ``X-Automate-Signature`` value) signs ``body`` with ``secret``.

    Pass the raw request body, byte for byte, as received: re-serialised JSON will not match.
    The signature is compared in constant time; several ``v1=`` entries are accepted (any
    may match). A timestamp more than ``tolerance`` seconds away from ``now`` (either way) is
    refused, so a captured delivery cannot be replayed later; ``tolerance=None`` disables that
    check and should only be used with a receiver-side store of seen ``Idempotency-Key``\\ s.
    """
    if not header or not secret:
        return False
    timestamp: int | None = None
    candidates: list[bytes] = []
    for part in header.split(","):
        name, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if name == "t":
            if not value.isdigit() or timestamp is not None:
                return False
            timestamp = int(value)
        elif name == SIGNATURE_VERSION and value.isascii():
            candidates.append(value.encode())
    if timestamp is None or not candidates:
        return False
    if tolerance is not None:
        current = time.time() if now is None else now
        if abs(current - timestamp) > tolerance:
            return False
    data = body.encode() if isinstance(body, str) else body
    expected = _digest(secret, timestamp, data).encode()
    # Compare against every candidate, without stopping early, so timing reveals nothing.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, candidate)
    return matched


class WebhookConnector(HttpConnectorBase):
    """POSTs signed JSON events to one endpoint.

    Config: ``url`` and ``secret`` (both required; either may be a SecretRef), ``headers``
    (extra headers for the endpoint, e.g. its own auth), and the shared ``timeout``, ``retry``
    and ``max_response_bytes``. Redirects are not followed: a 3xx is a failed delivery.
    """

    code = "webhook"
    name = "Signed webhook"
    actions = {"send": "POST a signed JSON event to the configured URL."}
    config_keys = frozenset({"url", "secret", "headers"})
    param_keys = frozenset({"event", "payload"})

    def __init__(self, config: Mapping[str, Any]) -> None:
        super().__init__(config)
        #: Where signature timestamps come from; tests pin it.
        self.clock: Callable[[], float] = time.time

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = super().validate_config(config)
        if not isinstance(config, Mapping):
            return problems
        problems.extend(url_problems("url", config.get("url"), required=True))
        problems.extend(text_problems("secret", config.get("secret"), required=True))
        problems.extend(header_problems("headers", config.get("headers")))
        return problems

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        self.check_action(action)
        unknown = sorted(set(params) - self.param_keys, key=str)
        if unknown:
            raise invalid_params(f"unknown param(s) {', '.join(map(repr, unknown))}")
        event = params.get("event")
        if (
            not isinstance(event, str)
            or not event
            or len(event) > MAX_EVENT_LENGTH
            or not event.isprintable()
        ):
            raise invalid_params(f"event must be a printable name of 1-{MAX_EVENT_LENGTH} chars")
        payload = params.get("payload", {})
        body = json_bytes(
            {"id": context.idempotency_key, "event": event, "data": payload}, "payload"
        )

        url = resolved_text(self.config, "url")
        secret = resolved_text(self.config, "secret")
        assert url is not None and secret is not None  # validate_config requires both
        configured = resolved_headers(self.config)
        headers = {**configured, "Content-Type": "application/json", EVENT_HEADER: event}

        def sign(content: bytes) -> dict[str, str]:
            return {
                SIGNATURE_HEADER: signature_header(secret, content, timestamp=int(self.clock()))
            }

        reply = self.deliver(
            OutboundRequest(
                method="POST",
                url=url,
                headers=headers,
                content=body,
                timeout=self.timeout,
                max_response_bytes=self.max_response_bytes,
                sign=sign,
            ),
            context,
        )
        if reply.status >= 300:
            raise reply.error([*configured.values(), url, secret], what="Webhook got HTTP")
        response, encoding = reply.decoded_body()
        return ConnectorResult(
            data={"status": reply.status, "body": response, "body_encoding": encoding},
            status=reply.status,
            metadata={"attempts": reply.attempts, "host": reply.host},
        )
