"""What a widget request can be refused with; each becomes a NormalizedError (the widget shows
a message per ``code``)."""

from __future__ import annotations

from automate_core.errors import AutomateError, NotFoundError


class EmbedNotFound(NotFoundError):
    code = "embed_not_found"
    default_message = "No such chat widget."


class ConversationNotFound(NotFoundError):
    code = "conversation_not_found"
    default_message = "No such conversation."


class OriginNotAllowed(AutomateError):
    status_code = 403
    code = "origin_not_allowed"
    default_message = "This chat is not available on this site."


class IdentityRequired(AutomateError):
    status_code = 401
    code = "identity_required"
    default_message = "This chat needs a signed-in visitor: the site must identify them first."


class InvalidToken(AutomateError):
    status_code = 401
    code = "invalid_token"
    default_message = "The token is not valid for this chat."


class TokenExpired(InvalidToken):
    code = "token_expired"
    default_message = "The token has expired."


class TokenReplayed(InvalidToken):
    code = "token_replayed"
    default_message = "This end-user token was already used to start a conversation."


class RateLimited(AutomateError):
    status_code = 429
    code = "rate_limited"
    default_message = "Too many messages; wait a moment."

    def __init__(self, retry_after: float, *, scope: str) -> None:
        self.retry_after = retry_after
        seconds = max(1, round(retry_after + 0.5))
        super().__init__(details={"retry_after_seconds": seconds, "scope": scope})


class QuotaExceeded(AutomateError):
    status_code = 402
    code = "quota_exceeded"
    default_message = "You have used today's allowance of this chat."


class DailyCapReached(AutomateError):
    status_code = 429
    code = "daily_cap_reached"
    default_message = "This chat has answered all it may today."
