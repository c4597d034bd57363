"""The install snippet of an embed: one script tag, shown in the admin and the docs."""

from __future__ import annotations

from django.utils.html import format_html
from django.utils.safestring import SafeString

from widgets.models import ChatEmbed

SCRIPT_PATH = "/widgets/v1/embed.js"


def install_snippet(embed: ChatEmbed, base_url: str) -> str:
    """``<script src="{base_url}/widgets/v1/embed.js" data-embed="pk_…" async></script>``."""
    return str(
        format_html(
            '<script src="{}{}" data-embed="{}" async></script>',
            base_url.rstrip("/"),
            SCRIPT_PATH,
            embed.publishable_key,
        )
    )


def inline_snippet(embed: ChatEmbed, base_url: str) -> SafeString:
    """The same widget mounted inside the host's element ``#chat`` instead of a bubble."""
    return format_html(
        '<div id="chat"></div>\n<script src="{}{}" data-embed="{}" data-mount="#chat" async>'
        "</script>",
        base_url.rstrip("/"),
        SCRIPT_PATH,
        embed.publishable_key,
    )
