"""The ``email`` connector: sends mail through Django's configured e-mail backend.

The mail server is the operator's (``EMAIL_BACKEND``, ``EMAIL_HOST``... in settings), never the
step's: a config that named an SMTP host would be a way around the egress policy. Every address
is checked before anything is sent, and line breaks are refused in every header value.

SMTP has no idempotency keys, so the step's key becomes the message's ``Message-ID``
(``<sha256(key)@domain>``): a retried step sends a message with the same id, which mail
clients and many servers treat as the same message.
"""

from __future__ import annotations

import hashlib
import smtplib
from collections.abc import Mapping, Sequence
from email.utils import getaddresses
from typing import Any

from django.conf import settings
from django.core import mail
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.utils.html import strip_tags

from automate_core.conf import automate_settings
from automate_core.connectors.base import (
    ConnectorAdapter,
    ConnectorContext,
    ConnectorError,
    ConnectorResult,
)
from automate_core.governance import redaction

__all__ = ["EmailConnector", "message_id_for"]

DEFAULT_MAX_RECIPIENTS = 50
MAX_SUBJECT_LENGTH = 998  # RFC 5322's line limit


def _invalid(message: str) -> ConnectorError:
    return ConnectorError(f"Invalid params: {message}", retryable=False)


def parse_address(value: Any) -> tuple[str, str] | None:
    """``(display, addr)`` for one address (``a@b.c`` or ``Name <a@b.c>``), None if invalid."""
    if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
        return None
    parsed = getaddresses([value])
    if len(parsed) != 1:
        return None
    name, addr = parsed[0]
    try:
        validate_email(addr)
    except ValidationError:
        return None
    return name, addr


def message_id_for(idempotency_key: str, from_email: str) -> str:
    """The ``Message-ID`` for a step: the same for every retry, unique per step."""
    parsed = parse_address(from_email)
    domain = parsed[1].rpartition("@")[2] if parsed else "django-automate.invalid"
    digest = hashlib.sha256(idempotency_key.encode()).hexdigest()[:40]
    return f"<{digest}@{domain}>"


def _sender_allowed(addr: str, allowed: Sequence[str]) -> bool:
    addr = addr.lower()
    for entry in allowed:
        entry = entry.lower()
        if addr == entry or (entry.startswith("@") and addr.endswith(entry)):
            return True
    return False


class EmailConnector(ConnectorAdapter):
    """Sends one message per step through ``django.core.mail``.

    Config (all optional): ``from_email`` (default ``DEFAULT_FROM_EMAIL``), ``reply_to`` (a list
    of addresses), ``allowed_from`` (addresses or ``@domain`` entries the sender must match,
    ``from_email`` and a step's ``from`` alike), ``max_recipients`` (to + cc + bcc, default 50).
    """

    code = "email"
    name = "E-mail"
    actions = {"send": "Send an e-mail through the site's e-mail backend."}
    config_keys = frozenset({"from_email", "reply_to", "allowed_from", "max_recipients"})
    param_keys = frozenset({"to", "cc", "bcc", "subject", "text", "html", "from", "reply_to"})

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        if not isinstance(config, Mapping):
            return ["config must be a mapping"]
        problems = [
            f"unknown option {key!r}" for key in sorted(set(config) - cls.config_keys, key=str)
        ]
        if "from_email" in config and parse_address(config["from_email"]) is None:
            problems.append("from_email must be an e-mail address")
        reply_to = config.get("reply_to")
        if reply_to is not None and (
            not isinstance(reply_to, list) or any(parse_address(a) is None for a in reply_to)
        ):
            problems.append("reply_to must be a list of e-mail addresses")
        allowed = config.get("allowed_from")
        if allowed is not None:
            if not isinstance(allowed, list) or not all(
                isinstance(entry, str)
                and (parse_address(entry) or (entry.startswith("@") and "." in entry))
                for entry in allowed
            ):
                problems.append("allowed_from must be a list of addresses or '@domain' entries")
            elif "from_email" in config and parse_address(config["from_email"]):
                sender = parse_address(config["from_email"])
                if sender and not _sender_allowed(sender[1], allowed):
                    problems.append("from_email is not in allowed_from")
        limit = config.get("max_recipients", DEFAULT_MAX_RECIPIENTS)
        if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= 1000:
            problems.append("max_recipients must be a whole number from 1 to 1000")
        return problems

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        self.check_action(action)
        message = self._message(params, context)
        try:
            sent = message.send(fail_silently=False)
        except (OSError, ValueError) as exc:  # smtplib's errors are OSErrors; bad headers not
            raise self._delivery_error(exc) from exc
        if sent != 1:
            raise ConnectorError("The e-mail backend sent nothing", retryable=False)
        return ConnectorResult(
            data={
                "message_id": message.extra_headers["Message-ID"],
                "to": list(message.to),
                "cc": list(message.cc),
                "bcc_count": len(message.bcc),
            }
        )

    def _message(
        self, params: Mapping[str, Any], context: ConnectorContext
    ) -> mail.EmailMultiAlternatives:
        unknown = sorted(set(params) - self.param_keys, key=str)
        if unknown:
            raise _invalid(f"unknown param(s) {', '.join(map(repr, unknown))}")
        to, cc, bcc = (self._addresses(params, name) for name in ("to", "cc", "bcc"))
        total = len(to) + len(cc) + len(bcc)
        if total == 0:
            raise _invalid("give at least one recipient in to, cc or bcc")
        limit = int(self.config.get("max_recipients", DEFAULT_MAX_RECIPIENTS))
        if total > limit:
            raise _invalid(f"{total} recipients is more than max_recipients ({limit})")

        subject = params.get("subject")
        if not isinstance(subject, str) or not subject.strip():
            raise _invalid("subject is required")
        if any(c in subject for c in "\r\n\0") or len(subject) > MAX_SUBJECT_LENGTH:
            raise _invalid(f"subject must be one line of at most {MAX_SUBJECT_LENGTH} chars")

        text, html = params.get("text"), params.get("html")
        if not text and not html:
            raise _invalid("give text, html or both")
        for name, value in (("text", text), ("html", html)):
            if value is not None and not isinstance(value, str):
                raise _invalid(f"{name} must be a string")

        sender = self._sender(params.get("from"))
        reply_to = (
            self._addresses(params, "reply_to")
            if "reply_to" in params
            else list(self.config.get("reply_to") or [])
        )
        headers = {"Message-ID": message_id_for(context.idempotency_key, sender)}
        if context.trace_id:
            headers[automate_settings.TRACE_HEADER] = context.trace_id
        message = mail.EmailMultiAlternatives(
            subject=subject,
            body=text if text else strip_tags(html or ""),
            from_email=sender,
            to=to,
            cc=cc,
            bcc=bcc,
            reply_to=reply_to,
            headers=headers,
        )
        if html:
            message.attach_alternative(html, "text/html")
        return message

    @staticmethod
    def _addresses(params: Mapping[str, Any], name: str) -> list[str]:
        value = params.get(name)
        if value is None:
            return []
        values = [value] if isinstance(value, str) else value
        if not isinstance(values, list):
            raise _invalid(f"{name} must be an address or a list of addresses")
        for position, address in enumerate(values):
            if parse_address(address) is None:
                where = name if isinstance(value, str) else f"{name}[{position}]"
                raise _invalid(f"{where} is not a valid e-mail address")
        return list(values)

    def _sender(self, requested: Any) -> str:
        sender = requested if requested is not None else self.config.get("from_email")
        sender = sender if sender is not None else settings.DEFAULT_FROM_EMAIL
        parsed = parse_address(sender)
        if parsed is None:
            raise _invalid("from is not a valid e-mail address")
        allowed = self.config.get("allowed_from")
        if allowed and not _sender_allowed(parsed[1], allowed):
            raise _invalid("from is not in the connector's allowed_from")
        return str(sender)

    @staticmethod
    def _delivery_error(exc: Exception) -> ConnectorError:
        """Transient SMTP failures (4xx replies, lost connections) are retryable; permanent
        ones (5xx replies, refused credentials, malformed messages) are not."""
        kind = type(exc).__name__
        details: dict[str, Any] = {"error": kind}
        if isinstance(exc, smtplib.SMTPRecipientsRefused):
            codes = [code for code, _ in exc.recipients.values()]
            details["smtp_codes"] = sorted(set(codes))
            retryable = bool(codes) and all(400 <= code < 500 for code in codes)
            message = "The mail server refused every recipient"
        elif isinstance(exc, smtplib.SMTPAuthenticationError):
            details["smtp_code"] = exc.smtp_code
            retryable, message = False, "The mail server refused the site's credentials"
        elif isinstance(exc, smtplib.SMTPResponseException):
            details["smtp_code"] = exc.smtp_code
            retryable = 400 <= exc.smtp_code < 500
            reason = exc.smtp_error
            text = reason.decode(errors="replace") if isinstance(reason, bytes) else str(reason)
            message = f"The mail server answered {exc.smtp_code}: {redaction.redact_text(text)}"
        elif isinstance(exc, smtplib.SMTPServerDisconnected) or (
            isinstance(exc, OSError) and not isinstance(exc, smtplib.SMTPException)
        ):
            retryable, message = True, f"Could not reach the mail server ({kind})"
        else:
            retryable, message = False, f"The message could not be sent ({kind})"
        return ConnectorError(message, retryable=retryable, details=details)
