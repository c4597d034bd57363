"""Signed, single-use completion callback URLs.

``/api/v1/modal/callback/<job>?attempt=<n>&exp=<unix time>&sig=<hex>``: ``sig`` is an HMAC-SHA256,
keyed from ``SECRET_KEY`` (Django's ``salted_hmac`` with this module's salt), over the job id,
the attempt number and the expiry. A URL is good for one report of one attempt: once that
attempt has an outcome (from this callback or from the reconcile poll) the same URL is
refused, and a retry or escalation gets a URL of its own. It expires ``CALLBACK_GRACE_SECONDS``
after the endpoint's timeout.
"""

from __future__ import annotations

import hmac
import time
import uuid
from urllib.parse import urlencode

from django.urls import reverse
from django.utils.crypto import salted_hmac

from automate_core.errors import AutomateError
from automate_modal.conf import modal_settings

_SALT = "automate_modal.callback"


class CallbackRefused(AutomateError):
    """The callback URL is forged, expired, or already used."""

    status_code = 403
    code = "callback_refused"
    default_message = "This callback URL is not valid."


def signature(job_id: uuid.UUID | str, attempt: int, expires: int) -> str:
    return salted_hmac(_SALT, f"{job_id}:{attempt}:{expires}", algorithm="sha256").hexdigest()


def callback_url(job_id: uuid.UUID | str, attempt: int, timeout: int) -> str:
    """The absolute URL the attempt reports to; empty when no ``CALLBACK_BASE_URL`` is set."""
    base = str(modal_settings.CALLBACK_BASE_URL or "").rstrip("/")
    if not base:
        return ""
    expires = int(time.time()) + timeout + int(modal_settings.CALLBACK_GRACE_SECONDS)
    query = urlencode(
        {"attempt": attempt, "exp": expires, "sig": signature(job_id, attempt, expires)}
    )
    return f"{base}{reverse('modal-callback', kwargs={'job': job_id})}?{query}"


def verify(job_id: uuid.UUID | str, attempt: str, expires: str, sig: str) -> int:
    """The attempt number a genuine, unexpired URL names; :class:`CallbackRefused` otherwise."""
    try:
        number, deadline = int(attempt), int(expires)
    except (TypeError, ValueError):
        raise CallbackRefused("The callback URL is malformed.") from None
    if not hmac.compare_digest(signature(job_id, number, deadline), str(sig or "")):
        raise CallbackRefused("The callback signature does not match.")
    if deadline < time.time():
        raise CallbackRefused("The callback URL has expired.")
    return number
