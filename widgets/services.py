"""The widget app's public operations: what its endpoints, a Django host and other apps call.

Every operation takes the embed a request named and never crosses to another embed or tenant:
conversations are looked up within the embed, messages within the conversation. Nothing here
calls a model before the admission checks of :mod:`widgets.admission` passed.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction
from django.utils import timezone

from automate_core.errors import InvalidInputError
from automate_core.governance import audit
from automate_core.tracing import current_trace_id, new_trace_id
from automate_llm.services import CallContext
from widgets import admission, tokens
from widgets.conf import widget_settings
from widgets.errors import ConversationNotFound, EmbedNotFound, IdentityRequired
from widgets.models import ChatEmbed, WidgetConversation, WidgetMessage
from widgets.targets import AnswerStream, Reply, target_for
from widgets.tokens import mint

__all__ = [
    "Question",
    "StartedConversation",
    "ask",
    "finish_answer",
    "get_conversation",
    "get_embed",
    "history",
    "mint",
    "rate_answer",
    "release_connection",
    "start_conversation",
]

MAX_COMMENT_CHARS = 2000


def get_embed(publishable_key: str) -> ChatEmbed:
    """The active embed of ``publishable_key``; :class:`EmbedNotFound` otherwise."""
    embed = (
        ChatEmbed.objects.filter(publishable_key=publishable_key, is_active=True)
        .select_related("tenant", "rag_endpoint")
        .first()
    )
    if embed is None or not embed.tenant.is_active:
        raise EmbedNotFound()
    return embed


def get_tenant_embed(tenant: Any, publishable_key: str) -> ChatEmbed:
    """:func:`get_embed`, only if it belongs to ``tenant`` (an API key's)."""
    embed = get_embed(publishable_key)
    if embed.tenant_id != getattr(tenant, "pk", tenant):
        raise EmbedNotFound()
    return embed


@dataclass(frozen=True)
class StartedConversation:
    conversation: WidgetConversation
    token: str
    expires_in: int


def start_conversation(
    embed: ChatEmbed, *, origin: str, end_user_token: str | None = None
) -> StartedConversation:
    """Start a conversation from ``origin`` (already checked) and issue its token.

    A signed embed needs an end-user token, spent here (a replay is refused); an anonymous
    embed takes one too when the host has it. Without one the visitor is ``anon:<id>`` of this
    conversation.
    """
    user = tokens.read_end_user_token(embed, end_user_token) if end_user_token else None
    if user is None and embed.signed:
        raise IdentityRequired()
    conversation_id = uuid.uuid4()
    end_user = user.id if user else f"anon:{conversation_id}"
    with transaction.atomic():
        if user is not None:
            tokens.spend(embed, user)
        conversation = WidgetConversation.objects.create(
            id=conversation_id,
            tenant_id=embed.tenant_id,
            embed=embed,
            origin=origin,
            end_user=end_user,
            signed=user is not None,
            claims=user.claims if user else {},
        )
        admission.apply_quota(embed, end_user)
    token, expires_in = tokens.issue_conversation_token(
        embed, conversation_id=conversation.pk, end_user=end_user, origin=origin
    )
    return StartedConversation(conversation, token, expires_in)


def get_conversation(embed: ChatEmbed, token: str | None, *, origin: str) -> WidgetConversation:
    """The conversation ``token`` was issued for, from ``origin``, on ``embed``."""
    claims = tokens.read_conversation_token(embed, token, origin=origin)
    conversation = WidgetConversation.objects.filter(
        pk=claims.conversation_id, embed=embed, end_user=claims.end_user
    ).first()
    if conversation is None:
        raise ConversationNotFound()
    return conversation


def renew_token(conversation: WidgetConversation) -> tuple[str, int]:
    return tokens.issue_conversation_token(
        conversation.embed,
        conversation_id=conversation.pk,
        end_user=conversation.end_user,
        origin=conversation.origin,
    )


@dataclass
class Question:
    """An admitted question, its answer stream and the answer's first piece (``None`` when the
    stream had none)."""

    message: WidgetMessage
    stream: AnswerStream
    pieces: Iterator[str]
    head: str | None
    context: CallContext


def ask(conversation: WidgetConversation, text: Any) -> Question:
    """Admit the visitor's question and start its answer.

    In order: the text, the end user's rate limit, their quota, the embed's daily cap (the
    question is stored then), and the target, which retrieves and holds the budget before the
    model is called; errors up to the answer's first piece are raised here (a failed answer is
    stored for them): the end user's budget that cannot hold the answer (``BudgetExceeded``),
    no index, no model.
    """
    embed = conversation.embed
    limit = int(widget_settings.MAX_MESSAGE_CHARS)
    if not isinstance(text, str) or not text.strip() or len(text) > limit:
        raise InvalidInputError(
            f"the message is 1 to {limit} characters", details={"field": "text"}
        )
    admission.check_end_user_rate(embed, conversation.end_user)
    admission.check_quota(embed, conversation.end_user)
    message = admission.admit_question(embed, conversation, text.strip())
    context = CallContext(
        end_user=admission.quota_scope(embed, conversation.end_user),
        trace_id=current_trace_id() or new_trace_id(),
        idempotency_key=f"widget-message:{message.pk}",
    )
    stream: AnswerStream | None = None
    try:
        stream = target_for(embed).open(
            message.text, context=context, claims=dict(conversation.claims)
        )
        pieces = iter(stream)
        release_connection()  # the stream read what it needs; the wait holds no connection
        head = next(pieces, None)
    except BaseException as exc:
        if stream is not None:
            stream.close()
        code = getattr(exc, "code", "internal_error")
        _store_answer(message, "", status=WidgetMessage.Status.FAILED, error={"code": code})
        raise
    return Question(message, stream, pieces, head, context)


def release_connection() -> None:
    """Close this thread's database connection while an answer waits on the model: a stream
    holds no transaction while it waits, and a connection held per open stream would make the
    number of concurrent visitors the number of database connections. The next query opens
    one again. (In a transaction, as in tests, it is kept.)"""
    if not connection.in_atomic_block:
        connection.close()


def finish_answer(
    question: Question,
    text: str,
    *,
    reply: Reply | None = None,
    status: str = WidgetMessage.Status.COMPLETE,
    error: dict[str, Any] | None = None,
) -> WidgetMessage:
    """Store the answer to ``question``: whole (``reply``), or what arrived before it stopped
    or failed."""
    return _store_answer(question.message, text, reply=reply, status=status, error=error)


def _store_answer(
    asked: WidgetMessage,
    text: str,
    *,
    reply: Reply | None = None,
    status: str = WidgetMessage.Status.COMPLETE,
    error: dict[str, Any] | None = None,
) -> WidgetMessage:
    answer = WidgetMessage(
        tenant_id=asked.tenant_id,
        embed_id=asked.embed_id,
        conversation_id=asked.conversation_id,
        role=WidgetMessage.Role.ASSISTANT,
        text=reply.text if reply else text,
        status=status,
        error=error or {},
    )
    if reply is not None:
        answer.citations = reply.citations
        answer.data = reply.data
        answer.request_id = uuid.UUID(reply.request_id) if reply.request_id else None
        answer.input_tokens = reply.input_tokens
        answer.output_tokens = reply.output_tokens
        answer.cost = reply.cost
    answer.save()
    return answer


def history(conversation: WidgetConversation) -> list[WidgetMessage]:
    """The conversation's latest messages (``HISTORY_LIMIT``), oldest first."""
    limit = int(widget_settings.HISTORY_LIMIT)
    latest = list(conversation.messages.order_by("-created_at")[:limit])
    return latest[::-1]


def rate_answer(
    conversation: WidgetConversation, message_id: Any, *, rating: Any, comment: Any = ""
) -> WidgetMessage:
    """Store the visitor's thumbs up or down (and comment) on an answer of their conversation;
    rating again replaces it."""
    if rating not in WidgetMessage.Rating.values:
        raise InvalidInputError("rating is up or down", details={"field": "rating"})
    if not isinstance(comment, str) or len(comment) > MAX_COMMENT_CHARS:
        raise InvalidInputError(
            f"comment is text of at most {MAX_COMMENT_CHARS} characters",
            details={"field": "comment"},
        )
    try:
        pk = uuid.UUID(str(message_id))
    except ValueError as exc:
        raise ConversationNotFound("No such answer in this conversation.") from exc
    with transaction.atomic():
        message = (
            conversation.messages.select_for_update()
            .filter(pk=pk, role=WidgetMessage.Role.ASSISTANT)
            .first()
        )
        if message is None:
            raise ConversationNotFound("No such answer in this conversation.")
        message.rating = rating
        message.comment = comment
        message.rated_at = timezone.now()
        message.save(update_fields=["rating", "comment", "rated_at", "updated_at"])
        audit.record(
            "widgets.feedback",
            actor=f"end_user:{conversation.end_user}",
            tenant=conversation.embed.tenant,
            target=f"widgets.message:{message.pk}",
            data={"rating": rating},
        )
    return message
