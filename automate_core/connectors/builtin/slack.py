"""The ``slack`` connector: ``chat.postMessage`` with a bot token, and incoming webhooks.

Slack reports most failures as HTTP 200 with ``{"ok": false, "error": "<code>"}``; they become a
:class:`SlackAPIError` whose ``error`` is Slack's code. Codes that mean "try later"
(``ratelimited``, ``internal_error``, ...) are retryable; the rest (``invalid_auth``,
``channel_not_found``, ...) are not. HTTP 429 is retried in the connector after ``Retry-After``,
like every HTTP connector (see :mod:`automate_core.connectors.builtin.http`).

Slack has no idempotency keys: a retried step whose first post reached Slack but whose answer
was lost posts twice. The connector only retries answers that mean nothing was posted (429,
5xx, connection errors before a response).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from automate_core.connectors.base import ConnectorContext, ConnectorError, ConnectorResult
from automate_core.connectors.builtin.http import (
    HttpConnectorBase,
    HttpReply,
    OutboundRequest,
    invalid_params,
    is_retryable_status,
    json_bytes,
    resolved_text,
    scrub,
    text_problems,
    url_problems,
)

__all__ = ["DEFAULT_BASE_URL", "SlackAPIError", "SlackConnector"]

DEFAULT_BASE_URL = "https://slack.com/api"
#: Slack error codes after which the same call may succeed later.
RETRYABLE_ERRORS = frozenset(
    {"ratelimited", "rate_limited", "internal_error", "fatal_error", "service_unavailable",
     "request_timeout"}
)  # fmt: skip
_ERROR_CODE = re.compile(r"[a-z][a-z0-9_]{0,79}")
# Keys in a Slack error reply worth keeping: which OAuth scopes were missing, and warnings.
_ERROR_FIELDS = ("needed", "provided", "warning")


class SlackAPIError(ConnectorError):
    """Slack refused the call; ``error`` is Slack's error code (``channel_not_found``...)."""

    def __init__(
        self,
        error: str,
        *,
        retryable: bool,
        status: int | None = None,
        retry_after: float | None = None,
        details: dict[str, Any] | None = None,
    ) -> None:
        self.error = error
        self.status = status
        self.retry_after = retry_after
        info: dict[str, Any] = {"error": error, "status": status, **(details or {})}
        if retry_after is not None:
            info["retry_after"] = retry_after
        super().__init__(f"Slack error: {error}", retryable=retryable, details=info)


class SlackConnector(HttpConnectorBase):
    """Posts to Slack.

    Config: ``bot_token`` (``xoxb-...``, for ``post_message``), ``webhook_url`` (for
    ``webhook``), at least one of the two, either a SecretRef; ``base_url`` of the Web API
    (default ``https://slack.com/api``); and the shared ``timeout``, ``retry`` and
    ``max_response_bytes``.
    """

    code = "slack"
    name = "Slack"
    actions = {
        "post_message": "Post a message with chat.postMessage (needs bot_token).",
        "webhook": "Post a message to the incoming webhook URL (needs webhook_url).",
    }
    config_keys = frozenset({"bot_token", "webhook_url", "base_url"})

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        problems = super().validate_config(config)
        if not isinstance(config, Mapping):
            return problems
        if config.get("bot_token") is None and config.get("webhook_url") is None:
            problems.append("give bot_token (for post_message) or webhook_url (for webhook)")
        problems.extend(text_problems("bot_token", config.get("bot_token")))
        problems.extend(url_problems("webhook_url", config.get("webhook_url")))
        problems.extend(url_problems("base_url", config.get("base_url")))
        return problems

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        self.check_action(action)
        message = self._message(params)
        if action == "post_message":
            return self._post_message(message, context)
        return self._webhook(message, context)

    @staticmethod
    def _message(params: Mapping[str, Any]) -> dict[str, Any]:
        if not any(params.get(key) for key in ("text", "blocks", "attachments")):
            raise invalid_params("a message needs text, blocks or attachments")
        if not all(isinstance(key, str) for key in params):
            raise invalid_params("param names must be strings")
        return dict(params)

    def _secrets(self) -> list[str]:
        return [
            value
            for value in (self.config.get("bot_token"), self.config.get("webhook_url"))
            if isinstance(value, str)
        ]

    def _post_message(self, message: dict[str, Any], context: ConnectorContext) -> ConnectorResult:
        token = resolved_text(self.config, "bot_token")
        if token is None:
            raise ConnectorError("post_message needs bot_token in the config", retryable=False)
        channel = message.get("channel")
        if not isinstance(channel, str) or not channel:
            raise invalid_params("channel is required")
        base = resolved_text(self.config, "base_url") or DEFAULT_BASE_URL
        reply = self.deliver(
            OutboundRequest(
                method="POST",
                url=f"{base.rstrip('/')}/chat.postMessage",
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json; charset=utf-8",
                },
                content=json_bytes(message, "message"),
                timeout=self.timeout,
                max_response_bytes=self.max_response_bytes,
            ),
            context,
        )
        try:
            answer = reply.json()
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise self._http_failure(reply)
        if reply.status >= 300 or answer.get("ok") is not True:
            raise self._api_error(reply, answer)
        return ConnectorResult(
            data=answer, status=reply.status, metadata={"attempts": reply.attempts}
        )

    def _webhook(self, message: dict[str, Any], context: ConnectorContext) -> ConnectorResult:
        url = resolved_text(self.config, "webhook_url")
        if url is None:
            raise ConnectorError("webhook needs webhook_url in the config", retryable=False)
        reply = self.deliver(
            OutboundRequest(
                method="POST",
                url=url,
                headers={"Content-Type": "application/json; charset=utf-8"},
                content=json_bytes(message, "message"),
                timeout=self.timeout,
                max_response_bytes=self.max_response_bytes,
            ),
            context,
        )
        if reply.status >= 300:
            # Incoming webhooks answer errors as plain text: "invalid_payload", "no_service"...
            text = reply.text.strip()
            if _ERROR_CODE.fullmatch(text):
                raise self._api_error(reply, {"ok": False, "error": text})
            raise self._http_failure(reply)
        return ConnectorResult(
            data={"ok": True}, status=reply.status, metadata={"attempts": reply.attempts}
        )

    def _api_error(self, reply: HttpReply, answer: Mapping[str, Any]) -> SlackAPIError:
        error = answer.get("error")
        if not isinstance(error, str) or not _ERROR_CODE.fullmatch(error):
            error = "ratelimited" if reply.status == 429 else f"http_{reply.status}"
        details = {
            key: scrub(str(answer[key]), self._secrets()) for key in _ERROR_FIELDS if key in answer
        }
        return SlackAPIError(
            error,
            retryable=error in RETRYABLE_ERRORS or is_retryable_status(reply.status),
            status=reply.status,
            retry_after=reply.retry_after,
            details={"attempts": reply.attempts, **details},
        )

    def _http_failure(self, reply: HttpReply) -> ConnectorError:
        """A reply that is not Slack's JSON: a proxy's error page, or a 5xx."""
        if reply.status >= 300:
            return self._api_error(reply, {})
        return ConnectorError(
            f"Slack answered HTTP {reply.status} without a JSON body",
            retryable=False,
            details={"status": reply.status, "attempts": reply.attempts},
        )
