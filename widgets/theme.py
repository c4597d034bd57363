"""An embed's theme: colours, texts and the launcher's place, checked before it is saved.

The theme reaches the page as data (CSS custom properties and text nodes), never as markup or
CSS text: colours must be plain colour values, so a theme cannot inject styles or script.
"""

from __future__ import annotations

import re
from typing import Any

from django.core.exceptions import ValidationError

#: Colours a theme may set; each becomes a ``--ac-<name>`` custom property in the widget.
COLORS = ("accent", "accent-text", "background", "text", "muted", "border")
POSITIONS = ("bottom-right", "bottom-left")
#: Texts of the panel a site may translate (the widget's defaults are English).
STRINGS = (
    "open",
    "close",
    "send",
    "stop",
    "retry",
    "placeholder",
    "not_available",
    "quota",
    "rate_limited",
    "network",
    "error",
    "sources",
    "table",
    "chart",
    "thumbs_up",
    "thumbs_down",
)
_COLOR = re.compile(r"^(#[0-9a-fA-F]{3,8}|(rgb|hsl)a?\([0-9., %/-]{1,60}\)|[a-zA-Z]{3,20})$")
_MAX_TEXT = 500


def _text(value: Any, name: str) -> None:
    if not isinstance(value, str) or len(value) > _MAX_TEXT:
        raise ValidationError(f"theme {name} must be text of at most {_MAX_TEXT} characters")


def validate_theme(theme: Any) -> None:
    """Refuse unknown keys and anything but plain colours and short texts."""
    if not isinstance(theme, dict):
        raise ValidationError("the theme is a JSON object")
    unknown = set(theme) - {"colors", "dark_colors", "title", "greeting", "position", "strings"}
    if unknown:
        raise ValidationError(f"unknown theme keys: {', '.join(sorted(unknown))}")
    for key in ("colors", "dark_colors"):
        colors = theme.get(key, {})
        if not isinstance(colors, dict) or set(colors) - set(COLORS):
            raise ValidationError(f"theme {key} may set {', '.join(COLORS)}")
        for name, value in colors.items():
            if not isinstance(value, str) or not _COLOR.match(value):
                raise ValidationError(f"theme {key}.{name} is not a colour: {value!r}")
    for key in ("title", "greeting"):
        if key in theme:
            _text(theme[key], key)
    if theme.get("position", POSITIONS[0]) not in POSITIONS:
        raise ValidationError(f"theme position is one of {', '.join(POSITIONS)}")
    strings = theme.get("strings", {})
    if not isinstance(strings, dict) or set(strings) - set(STRINGS):
        raise ValidationError(f"theme strings may set {', '.join(STRINGS)}")
    for name, value in strings.items():
        _text(value, f"strings.{name}")
