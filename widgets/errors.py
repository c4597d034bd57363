"""What a widget request can be refused with; each becomes a NormalizedError (the widget shows
a message per ``code``). Refusals the platform already has keep its classes and codes: a rate
limit is DRF's ``Throttled`` (429 ``throttled``, ``Retry-After``), a spent quota the budgets'
``BudgetExceeded`` (402 ``budget_exceeded``, in the ``end_user`` scope)."""

from __future__ import annotations

from rest_framework.exceptions import Throttled

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


class RateLimited(Throttled):
    """A widget rate limit (per address or per end user) refused the request."""

    default_detail = "Too many messages; wait a moment."

    def __init__(self, retry_after: float) -> None:
        super().__init__(wait=max(1.0, retry_after))


class DailyCapReached(AutomateError):
    status_code = 429
    code = "daily_cap_reached"
    default_message = "This chat has answered all it may today."
