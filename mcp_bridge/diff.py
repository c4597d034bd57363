"""A readable difference between a tool's approved definition and its live one: what a person
reviews before approving a changed tool."""

from __future__ import annotations

import difflib
import json
from typing import Any

#: Parts of a definition shown in a review, in the order a reviewer reads them.
REVIEWED_FIELDS = ("description", "title", "inputSchema", "outputSchema", "annotations")


def _lines(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, str):
        return value.splitlines() or [""]
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False).splitlines()


def definition_diff(approved: dict[str, Any] | None, live: dict[str, Any]) -> dict[str, list[str]]:
    """For each reviewed field that differs, its unified diff lines (``-`` approved, ``+``
    live). With nothing approved yet, every field is shown as added."""
    changes: dict[str, list[str]] = {}
    for name in REVIEWED_FIELDS:
        before, after = (approved or {}).get(name), live.get(name)
        if before == after:
            continue
        lines = difflib.unified_diff(
            _lines(before), _lines(after), "approved", "live", lineterm="", n=3
        )
        changes[name] = list(lines)[2:]  # drop the ---/+++ header
    return changes
