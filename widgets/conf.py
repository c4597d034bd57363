"""``AUTOMATE_WIDGETS`` settings with defaults (see docs/widget.md "Settings")."""

from __future__ import annotations

from automate_core.conf import AppSettings

widget_settings = AppSettings(
    "AUTOMATE_WIDGETS",
    defaults={
        # Lifetime of the conversation token the server issues; each answer renews it.
        "CONVERSATION_TOKEN_SECONDS": 3600,
        # Longest lifetime an end-user token may have (exp - iat), and mint's default.
        "END_USER_TOKEN_MAX_SECONDS": 3600,
        # Clock skew tolerated when checking a token's exp and iat.
        "TOKEN_LEEWAY_SECONDS": 30,
        # Longest question a visitor may send.
        "MAX_MESSAGE_CHARS": 4000,
        # Messages a history request returns (the latest ones).
        "HISTORY_LIMIT": 100,
        # Lifetime of the admin's preview token (the preview page works that long).
        "PREVIEW_TOKEN_SECONDS": 900,
        # Rows of a data-chat answer's table sent to (and stored for) the widget.
        "TABLE_ROWS": 50,
        # Seconds a browser may cache a preflight answer.
        "PREFLIGHT_MAX_AGE": 600,
    },
)
