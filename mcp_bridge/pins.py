"""Tool pins: what "the same tool definition" means.

A pin is the SHA-256 of the RFC 8785 (JCS) canonical JSON of the parts of a tool's definition a
model reads or a call depends on: ``{name, description, inputSchema, outputSchema,
annotations}`` (missing parts are ``null``). Canonical JSON makes the pin independent of key
order and number spelling, so a server that re-serialises the same definition keeps its pin,
and any change to a description (the usual carrier of injected instructions), a schema or an
annotation gives a new one.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import rfc8785

#: The definition fields a pin covers, in their MCP wire names.
PINNED_FIELDS = ("name", "description", "inputSchema", "outputSchema", "annotations")


def pinned_definition(tool: Mapping[str, Any]) -> dict[str, Any]:
    """The pinned part of a tool definition given in MCP wire names (``tools/list`` JSON)."""
    return {name: tool.get(name) for name in PINNED_FIELDS}


def pin_of(tool: Mapping[str, Any]) -> str:
    """The hex SHA-256 pin of a tool definition given in MCP wire names."""
    canonical = rfc8785.dumps(pinned_definition(tool))
    return hashlib.sha256(canonical).hexdigest()
