"""Admin of embeds (with the snippet to copy and a live preview), their conversations and the
feedback on answers.

Every change to an embed is audited; rotating an embed's signing key invalidates the end-user
and conversation tokens issued before. The preview is a page of the admin that loads the real
``embed.js`` with a short-lived preview token bound to the embed and the admin's origin: the
embed answers that page, and the origin stays closed to everyone else.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin, messages
from django.db import transaction
from django.db.models import F, QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path

from automate_core.admin_base import AuditedAdmin, RecordsAdmin
from automate_core.errors import InvalidInputError
from widgets import tokens
from widgets.conf import widget_settings
from widgets.models import ChatEmbed, WidgetConversation, WidgetMessage
from widgets.snippet import SCRIPT_PATH, inline_snippet, install_snippet


@admin.register(ChatEmbed)
class ChatEmbedAdmin(AuditedAdmin):
    audit_kind = "widgets.embed"
    list_display = ("name", "tenant", "publishable_key", "identity_mode", "is_active")
    list_filter = ("identity_mode", "is_active")
    search_fields = ("name", "publishable_key")
    readonly_fields = ("publishable_key", "token_generation", "created_at", "updated_at")
    actions = ["rotate_signing_key"]

    def changeform_view(
        self,
        request: HttpRequest,
        object_id: str | None = None,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        extra_context = dict(extra_context or {})
        embed = self.get_object(request, object_id) if object_id else None
        if embed is not None:
            base = request.build_absolute_uri("/")
            extra_context["install_snippet"] = install_snippet(embed, base)
            extra_context["inline_snippet"] = inline_snippet(embed, base)
        return super().changeform_view(request, object_id, form_url, extra_context)

    def get_urls(self) -> list[URLPattern]:
        preview = path(
            "<path:object_id>/preview/",
            self.admin_site.admin_view(self.preview_view),
            name="widgets_chatembed_preview",
        )
        return [preview, *super().get_urls()]

    def preview_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        """The embed running on a page of the admin, as a visitor sees it; for a signed embed
        the visitor is ``preview:<staff user>`` with the claims given in ``?claims=``."""
        embed = self.get_object(request, object_id)
        if embed is None or not self.has_change_permission(request, embed):
            raise Http404
        origin = request.build_absolute_uri("/").rstrip("/")
        staff = f"user:{request.user.pk}"
        claims_text = request.GET.get("claims", "")
        identity = None
        if embed.signed:
            try:
                claims = json.loads(claims_text or "{}")
                if not isinstance(claims, dict):
                    raise InvalidInputError("claims are a JSON object")
                identity = tokens.mint(
                    embed,
                    f"preview:{request.user.pk}",
                    claims,
                    ttl=int(widget_settings.PREVIEW_TOKEN_SECONDS),
                )
            except (ValueError, InvalidInputError) as exc:
                self.message_user(request, f"Claims not used: {exc}", messages.WARNING)
        self.audit(request, embed, "preview")
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "original": embed,
            "title": f"Preview of {embed}",
            "embed": embed,
            "script_src": origin + SCRIPT_PATH,
            "preview_token": tokens.issue_preview_token(embed, origin=origin, staff=staff),
            "identity": identity,
            "claims": claims_text,
        }
        return TemplateResponse(request, "admin/widgets/chatembed/preview.html", context)

    @admin.action(description="Rotate the signing key (logs every visitor out)")
    def rotate_signing_key(self, request: HttpRequest, queryset: QuerySet[ChatEmbed]) -> None:
        with transaction.atomic():
            for embed in queryset:
                self.audit(request, embed, "rotate_key")
            queryset.update(token_generation=F("token_generation") + 1)
        self.message_user(request, "Signing keys rotated.", messages.SUCCESS)


class MessageInline(admin.TabularInline):
    model = WidgetMessage
    fields = ("created_at", "role", "text", "status", "rating", "comment")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(WidgetConversation)
class WidgetConversationAdmin(RecordsAdmin):
    list_display = ("created_at", "embed", "end_user", "origin", "signed")
    list_filter = ("signed",)
    search_fields = ("end_user",)
    readonly_fields = ("embed", "origin", "end_user", "signed", "claims", "created_at")
    inlines = [MessageInline]


@admin.register(WidgetMessage)
class WidgetMessageAdmin(RecordsAdmin):
    """Answers with the visitors' feedback (filter by rating to read the thumbs down)."""

    list_display = ("created_at", "embed", "role", "status", "rating", "short_text")
    list_filter = ("role", "status", "rating")
    readonly_fields = (
        "embed",
        "conversation",
        "role",
        "text",
        "status",
        "citations",
        "error",
        "request_id",
        "input_tokens",
        "output_tokens",
        "cost",
        "rating",
        "comment",
        "rated_at",
        "created_at",
    )

    @admin.display(description="text")
    def short_text(self, obj: WidgetMessage) -> str:
        return obj.text[:80]
