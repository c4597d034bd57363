"""Tool results normalized into one pydantic value, whatever content the server sent."""

from __future__ import annotations

from typing import Any, Literal

import mcp_types
from pydantic import BaseModel, Field


class ContentItem(BaseModel):
    """One content block: ``text``; ``image`` / ``audio`` (base64 ``data``); ``resource`` (an
    embedded resource: ``uri`` with ``text`` or base64 ``data``); ``resource_link`` (``uri``)."""

    type: Literal["text", "image", "audio", "resource", "resource_link"]
    text: str | None = None
    data: str | None = None
    mime_type: str | None = None
    uri: str | None = None
    name: str | None = None


class ToolResult(BaseModel):
    """What a tool call returned. ``text`` joins the text blocks (and embedded text
    resources), the form a prompt or a template usually wants."""

    tool: str
    server: str
    pin: str
    is_error: bool = False
    text: str = ""
    content: list[ContentItem] = Field(default_factory=list)
    structured: dict[str, Any] | None = None


def _item(block: Any) -> ContentItem:
    if isinstance(block, mcp_types.TextContent):
        return ContentItem(type="text", text=block.text)
    if isinstance(block, mcp_types.ImageContent | mcp_types.AudioContent):
        return ContentItem(type=block.type, data=block.data, mime_type=block.mime_type)
    if isinstance(block, mcp_types.EmbeddedResource):
        resource = block.resource
        return ContentItem(
            type="resource",
            uri=str(resource.uri),
            mime_type=resource.mime_type,
            text=getattr(resource, "text", None),
            data=getattr(resource, "blob", None),
        )
    if isinstance(block, mcp_types.ResourceLink):
        return ContentItem(
            type="resource_link", uri=str(block.uri), name=block.name, mime_type=block.mime_type
        )
    raise ValueError(f"unknown content block {getattr(block, 'type', type(block).__name__)!r}")


def normalize(result: mcp_types.CallToolResult, *, tool: str, server: str, pin: str) -> ToolResult:
    """The :class:`ToolResult` of an SDK ``CallToolResult``."""
    items = [_item(block) for block in result.content]
    texts = [i.text for i in items if i.text is not None and i.type in ("text", "resource")]
    return ToolResult(
        tool=tool,
        server=server,
        pin=pin,
        is_error=bool(result.is_error),
        text="\n".join(texts),
        content=items,
        structured=result.structured_content,
    )
