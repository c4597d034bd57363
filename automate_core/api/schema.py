"""OpenAPI schema tweaks."""

from __future__ import annotations

from typing import Any


def strip_optional_trailing_slash(
    endpoints: list[tuple[Any, ...]], **_: Any
) -> list[tuple[Any, ...]]:
    """Routes accept an optional trailing slash; document the canonical form without it."""
    return [(path.rstrip("/") or "/", *rest) for path, *rest in endpoints]
