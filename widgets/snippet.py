"""The install snippet of an embed: one script tag, shown in the admin and the docs.

The snippets are plain text (attribute values escaped), to be shown escaped; they are never
rendered as markup in the admin.
"""

from __future__ import annotations

from django.utils.html import escape

from widgets.models import ChatEmbed

SCRIPT_PATH = "/widgets/v1/embed.js"


def _src(base_url: str) -> str:
    return escape(base_url.rstrip("/") + SCRIPT_PATH)


def install_snippet(embed: ChatEmbed, base_url: str) -> str:
    """``<script src="{base_url}/widgets/v1/embed.js" data-embed="pk_…" async></script>``."""
    key = escape(embed.publishable_key)
    return f'<script src="{_src(base_url)}" data-embed="{key}" async></script>'


def inline_snippet(embed: ChatEmbed, base_url: str) -> str:
    """The same widget mounted inside the host's element ``#chat`` instead of a bubble."""
    key = escape(embed.publishable_key)
    return (
        '<div id="chat"></div>\n'
        f'<script src="{_src(base_url)}" data-embed="{key}" data-mount="#chat" async></script>'
    )
