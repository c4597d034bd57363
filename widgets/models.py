"""An embed (the widget on a host's site), its conversations and their messages.

The publishable key ``pk_…`` is safe in a page: it names the embed, and the server only answers
it from the embed's allowed origins and only for its target. Everything else a visitor holds is
a short-lived token the server issued (see :mod:`widgets.tokens`).
"""

from __future__ import annotations

import secrets
from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError
from django.core.validators import MinValueValidator
from django.db import models

from automate_core.base import TenantScopedModel, TimeStampedModel, UUIDModel
from automate_core.errors import NotFoundError
from automate_core.governance.ratelimit import Rate
from automate_datachat import services as datachat
from widgets.origins import InvalidOriginPattern, OriginPattern
from widgets.theme import validate_theme

KEY_PREFIX = "pk_"


def new_publishable_key() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(24)


def _validate_rate(value: str) -> None:
    try:
        Rate.parse(value)
    except ValueError as exc:
        raise ValidationError(str(exc)) from exc


def _validate_origins(value: Any) -> None:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValidationError("allowed origins are a list of strings")
    for text in value:
        try:
            OriginPattern.parse(text)
        except InvalidOriginPattern as exc:
            raise ValidationError(str(exc)) from exc


class ChatEmbed(UUIDModel, TenantScopedModel, TimeStampedModel):
    """A chat widget a tenant puts on its pages, answering from one target: a RAG endpoint or
    a data-chat dataset (exactly one). :mod:`widgets.targets` turns an embed into what answers,
    so the endpoints and the widget are the same for every kind.
    """

    class IdentityMode(models.TextChoices):
        ANONYMOUS = "anonymous"
        SIGNED = "signed", "signed (end-user tokens from the host's backend)"

    name = models.CharField(max_length=200)
    publishable_key = models.CharField(
        max_length=64, unique=True, default=new_publishable_key, editable=False
    )
    allowed_origins = models.JSONField(
        default=list,
        blank=True,
        validators=[_validate_origins],
        help_text='Origins the widget may run on: "https://shop.example.com" or '
        '"https://*.example.com". Empty: nowhere.',
    )
    rag_endpoint = models.ForeignKey(
        "rag.RAGEndpoint",
        on_delete=models.PROTECT,
        null=True,
        blank=True,
        related_name="+",
        help_text="The RAG endpoint that answers (or a data-chat dataset).",
    )
    dataset = models.SlugField(
        max_length=100,
        blank=True,
        help_text="Or the slug of the data-chat dataset that answers; its row filters may use "
        'the signed visitor\'s claims ("$claims.customer_id").',
    )
    identity_mode = models.CharField(
        max_length=16, choices=IdentityMode.choices, default=IdentityMode.ANONYMOUS
    )
    theme = models.JSONField(default=dict, blank=True, validators=[validate_theme])
    user_rate_limit = models.CharField(
        max_length=32, default="20/min", validators=[_validate_rate], help_text="Per end user."
    )
    ip_rate_limit = models.CharField(
        max_length=32, default="60/min", validators=[_validate_rate], help_text="Per address."
    )
    user_quota_tokens = models.BigIntegerField(
        null=True,
        blank=True,
        validators=[MinValueValidator(0)],
        help_text="Tokens per end user per UTC day. Empty: no limit.",
    )
    user_quota_cost = models.DecimalField(
        max_digits=12,
        decimal_places=6,
        null=True,
        blank=True,
        validators=[MinValueValidator(Decimal(0))],
        help_text="Cost (USD) per end user per UTC day. Empty: no limit.",
    )
    daily_message_cap = models.PositiveIntegerField(
        null=True, blank=True, help_text="Questions per UTC day for the whole embed."
    )
    is_active = models.BooleanField(default=True)
    #: Part of the derived signing key: raising it invalidates every token issued before.
    token_generation = models.PositiveIntegerField(default=1, editable=False)

    class Meta:
        indexes = [models.Index(fields=["tenant", "name"])]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(rag_endpoint__isnull=False, dataset="")
                | (models.Q(rag_endpoint__isnull=True) & ~models.Q(dataset="")),
                name="widget_embed_one_target",
            )
        ]

    def __str__(self) -> str:
        return self.name

    def clean(self) -> None:
        if (self.rag_endpoint_id is None) == (not self.dataset):
            raise ValidationError("Choose what answers: a RAG endpoint or a dataset (one).")
        if self.dataset and self.tenant_id is not None:
            try:
                datachat.dataset_for(self.tenant, self.dataset)
            except NotFoundError as exc:
                raise ValidationError({"dataset": exc.message}) from exc

    @property
    def signed(self) -> bool:
        return self.identity_mode == self.IdentityMode.SIGNED


class WidgetConversation(UUIDModel, TenantScopedModel, TimeStampedModel):
    """One visitor's chat with an embed, started from one origin."""

    embed = models.ForeignKey(ChatEmbed, on_delete=models.CASCADE, related_name="conversations")
    origin = models.CharField(max_length=300)
    #: Who the budgets and rate limits count: the signed ``sub``, or ``anon:<conversation>``.
    end_user = models.CharField(max_length=200)
    signed = models.BooleanField(default=False)
    #: The end-user token's extra claims (signed mode), for targets that filter by them.
    claims = models.JSONField(default=dict, blank=True)

    class Meta:
        indexes = [models.Index(fields=["embed", "end_user"])]

    def __str__(self) -> str:
        return f"{self.embed} / {self.end_user}"


class WidgetMessage(UUIDModel, TenantScopedModel, TimeStampedModel):
    """A question or an answer; answers carry citations, usage and the visitor's feedback."""

    class Role(models.TextChoices):
        USER = "user"
        ASSISTANT = "assistant"

    class Status(models.TextChoices):
        COMPLETE = "complete"
        STOPPED = "stopped", "stopped (the visitor left or pressed stop)"
        FAILED = "failed"

    class Rating(models.TextChoices):
        UP = "up"
        DOWN = "down"

    embed = models.ForeignKey(ChatEmbed, on_delete=models.CASCADE, related_name="+")
    conversation = models.ForeignKey(
        WidgetConversation, on_delete=models.CASCADE, related_name="messages"
    )
    role = models.CharField(max_length=16, choices=Role.choices)
    text = models.TextField(blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.COMPLETE)
    citations = models.JSONField(default=list, blank=True)
    #: A data-chat answer's table (``columns``, ``rows``, ``row_count``, ``truncated``) and
    #: its chart's Vega-Lite spec (``chart``), rendered to SVG when shown.
    data = models.JSONField(default=dict, blank=True)
    error = models.JSONField(default=dict, blank=True)
    #: The ``LLMRequest`` of the answer (none when nothing was asked of a model).
    request_id = models.UUIDField(null=True, blank=True)
    input_tokens = models.IntegerField(default=0)
    output_tokens = models.IntegerField(default=0)
    cost = models.DecimalField(max_digits=12, decimal_places=6, default=Decimal(0))
    rating = models.CharField(max_length=8, choices=Rating.choices, blank=True)
    comment = models.TextField(blank=True)
    rated_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["created_at"]
        indexes = [models.Index(fields=["embed", "role", "created_at"])]

    def __str__(self) -> str:
        return f"{self.role}: {self.text[:60]}"


class UsedTokenId(models.Model):
    """A ``jti`` that started a conversation: an end-user token starts at most one. Rows are
    dropped once their token has expired (it is refused for that reason then)."""

    embed = models.ForeignKey(ChatEmbed, on_delete=models.CASCADE, related_name="+")
    jti = models.CharField(max_length=200)
    expires_at = models.DateTimeField(db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["embed", "jti"], name="widget_jti_once")]

    def __str__(self) -> str:
        return self.jti
