"""End-user and conversation tokens: JWTs (HS256) signed with a key derived per embed.

Why derived, not stored: the signing key never leaves this server (hosts get tokens from
:func:`mint` or ``POST /api/v1/widgets/<pk>/tokens``, never the key), so nothing needs to be
stored or shown. It is HMAC-SHA256 of the embed's id and ``token_generation`` under Django's
``SECRET_KEY`` (``salted_hmac``), one key per purpose. Rotating an embed (raising its
generation) or ``SECRET_KEY`` invalidates every token issued before; tokens live an hour at most,
so that is the worst a rotation costs a visitor.

* An **end-user token** says who the visitor is (``sub``) for one embed (``embed``: its
  publishable key), with ``iat``, ``exp`` (at most ``END_USER_TOKEN_MAX_SECONDS`` after
  ``iat``), a unique ``jti`` and the host's extra claims. It starts one conversation: its
  ``jti`` is recorded then, and a second start with it is refused (:class:`TokenReplayed`).
* A **conversation token** is what the widget sends with every later request: it binds the
  conversation, the embed, the origin it was started from and the end user.

* A **preview token** lets the admin's own page run the embed (the live preview): it binds
  the embed and the admin's origin, and only requests that carry it are answered from there.

The three have different audiences and keys, so none can stand in for another.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import jwt
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.crypto import salted_hmac

from automate_core.errors import InvalidInputError
from widgets.conf import widget_settings
from widgets.errors import InvalidToken, TokenExpired, TokenReplayed
from widgets.models import ChatEmbed, UsedTokenId

__all__ = [
    "ConversationClaims",
    "EndUser",
    "issue_preview_token",
    "mint",
    "read_conversation_token",
    "read_preview_token",
]

ALGORITHM = "HS256"
END_USER_AUDIENCE = "automate-widget:end-user"
CONVERSATION_AUDIENCE = "automate-widget:conversation"
PREVIEW_AUDIENCE = "automate-widget:preview"
#: Claims the platform sets; a host's extra claims may not use these names.
RESERVED_CLAIMS = frozenset({"sub", "embed", "exp", "iat", "nbf", "jti", "aud", "iss", "conv"})
MAX_END_USER_ID = 150


def signing_key(embed: ChatEmbed, purpose: str) -> bytes:
    value = f"{embed.pk}:{embed.token_generation}:{purpose}"
    return salted_hmac("widgets.tokens", value, algorithm="sha256").digest()


def _seconds(value: Any) -> int:
    return int(value.total_seconds()) if isinstance(value, dt.timedelta) else int(value)


def mint(
    embed: ChatEmbed,
    end_user_id: str,
    claims: dict[str, Any] | None = None,
    ttl: int | dt.timedelta | None = None,
) -> str:
    """An end-user token for ``embed``: the host's backend calls this for a signed-in visitor
    and hands the token to ``AutomateChat.identify(token)`` in the page.

    ``ttl`` (seconds or a timedelta) is at most ``END_USER_TOKEN_MAX_SECONDS`` (one hour by
    default, also the default ttl). ``claims`` are extra JSON values that reach the target
    (a data-chat dataset's row filters); the registered names are refused.
    """
    limit = int(widget_settings.END_USER_TOKEN_MAX_SECONDS)
    seconds = limit if ttl is None else _seconds(ttl)
    if not 1 <= seconds <= limit:
        raise InvalidInputError(f"ttl must be 1 to {limit} seconds", details={"field": "ttl"})
    if not isinstance(end_user_id, str) or not 1 <= len(end_user_id) <= MAX_END_USER_ID:
        raise InvalidInputError(
            f"end_user_id must be 1 to {MAX_END_USER_ID} characters",
            details={"field": "end_user_id"},
        )
    extra = dict(claims or {})
    clashing = sorted(RESERVED_CLAIMS & set(extra))
    if clashing:
        raise InvalidInputError(
            f"claims may not set {', '.join(clashing)}", details={"field": "claims"}
        )
    now = int(timezone.now().timestamp())
    payload = {
        **extra,
        "sub": end_user_id,
        "embed": embed.publishable_key,
        "aud": END_USER_AUDIENCE,
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, signing_key(embed, "end-user"), algorithm=ALGORITHM)


def _decode(token: Any, embed: ChatEmbed, purpose: str, audience: str) -> dict[str, Any]:
    if not isinstance(token, str) or not token:
        raise InvalidToken()
    try:
        payload: dict[str, Any] = jwt.decode(
            token,
            signing_key(embed, purpose),
            algorithms=[ALGORITHM],
            audience=audience,
            leeway=int(widget_settings.TOKEN_LEEWAY_SECONDS),
            options={"require": ["sub", "embed", "exp", "iat", "jti"]},
        )
    except jwt.ExpiredSignatureError as exc:
        raise TokenExpired() from exc
    except jwt.PyJWTError as exc:
        raise InvalidToken() from exc
    if payload["embed"] != embed.publishable_key:
        raise InvalidToken()
    if not isinstance(payload["sub"], str) or not 1 <= len(payload["sub"]) <= MAX_END_USER_ID:
        raise InvalidToken()
    return payload


@dataclass(frozen=True)
class EndUser:
    """A verified end-user token: who, with what extra claims, and the ``jti`` to spend."""

    id: str
    claims: dict[str, Any]
    jti: str
    expires_at: dt.datetime


def read_end_user_token(embed: ChatEmbed, token: Any) -> EndUser:
    """Verify an end-user token for ``embed`` (signature, audience, embed, exp, lifetime)."""
    payload = _decode(token, embed, "end-user", END_USER_AUDIENCE)
    lifetime = payload["exp"] - payload["iat"]
    if not isinstance(lifetime, int) or lifetime > int(widget_settings.END_USER_TOKEN_MAX_SECONDS):
        raise InvalidToken("The token lives longer than an end-user token may.")
    return EndUser(
        id=payload["sub"],
        claims={k: v for k, v in payload.items() if k not in RESERVED_CLAIMS},
        jti=str(payload["jti"]),
        expires_at=dt.datetime.fromtimestamp(payload["exp"], tz=dt.UTC),
    )


def spend(embed: ChatEmbed, user: EndUser) -> None:
    """Record that ``user``'s token started a conversation; :class:`TokenReplayed` if it had.

    Rows of tokens that have expired are dropped on the way (an expired token is refused for
    its expiry anyway)."""
    now = timezone.now()
    UsedTokenId.objects.filter(embed=embed, expires_at__lt=now).delete()
    try:
        with transaction.atomic():
            UsedTokenId.objects.create(embed=embed, jti=user.jti, expires_at=user.expires_at)
    except IntegrityError as exc:
        raise TokenReplayed() from exc


@dataclass(frozen=True)
class ConversationClaims:
    conversation_id: uuid.UUID
    end_user: str
    origin: str


def issue_conversation_token(
    embed: ChatEmbed, *, conversation_id: uuid.UUID, end_user: str, origin: str
) -> tuple[str, int]:
    """A conversation token and its lifetime in seconds."""
    seconds = int(widget_settings.CONVERSATION_TOKEN_SECONDS)
    now = int(timezone.now().timestamp())
    payload = {
        "sub": end_user,
        "embed": embed.publishable_key,
        "conv": str(conversation_id),
        "origin": origin,
        "aud": CONVERSATION_AUDIENCE,
        "iat": now,
        "exp": now + seconds,
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, signing_key(embed, "conversation"), algorithm=ALGORITHM), seconds


def read_conversation_token(embed: ChatEmbed, token: Any, *, origin: str) -> ConversationClaims:
    """Verify a conversation token for ``embed`` used from ``origin`` (the one it was issued
    to: a token carried to another allowed origin is refused too)."""
    payload = _decode(token, embed, "conversation", CONVERSATION_AUDIENCE)
    if payload.get("origin") != origin:
        raise InvalidToken("The token belongs to another site.")
    try:
        conversation_id = uuid.UUID(str(payload.get("conv")))
    except ValueError as exc:
        raise InvalidToken() from exc
    return ConversationClaims(conversation_id, payload["sub"], origin)


def issue_preview_token(embed: ChatEmbed, *, origin: str, staff: str) -> str:
    """A preview token for the admin page at ``origin`` (the admin's own), issued to ``staff``
    for ``PREVIEW_TOKEN_SECONDS``. It opens the embed to that origin only for requests that
    carry it, never to the origin's other visitors."""
    now = int(timezone.now().timestamp())
    payload = {
        "sub": staff,
        "embed": embed.publishable_key,
        "origin": origin,
        "aud": PREVIEW_AUDIENCE,
        "iat": now,
        "exp": now + int(widget_settings.PREVIEW_TOKEN_SECONDS),
        "jti": uuid.uuid4().hex,
    }
    return jwt.encode(payload, signing_key(embed, "preview"), algorithm=ALGORITHM)


def read_preview_token(embed: ChatEmbed, token: Any) -> str:
    """The origin a valid preview token of ``embed`` was issued for."""
    payload = _decode(token, embed, "preview", PREVIEW_AUDIENCE)
    origin = payload.get("origin")
    if not isinstance(origin, str):
        raise InvalidToken()
    return origin
