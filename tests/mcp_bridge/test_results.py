"""Tool results of every content kind normalized into one ToolResult."""

from __future__ import annotations

import mcp_types

from mcp_bridge.results import normalize


def test_text_images_and_embedded_resources_are_normalized():
    result = mcp_types.CallToolResult(
        content=[
            mcp_types.TextContent(type="text", text="Found it."),
            mcp_types.ImageContent(type="image", data="aGk=", mime_type="image/png"),
            mcp_types.EmbeddedResource(
                type="resource",
                resource=mcp_types.TextResourceContents(
                    uri="docs://readme", mime_type="text/plain", text="Read me."
                ),
            ),
            mcp_types.ResourceLink(type="resource_link", uri="docs://big", name="big"),
        ],
        structured_content={"count": 1},
    )

    value = normalize(result, tool="find", server="docs", pin="p")

    assert value.text == "Found it.\nRead me."
    assert [item.type for item in value.content] == ["text", "image", "resource", "resource_link"]
    assert (value.content[1].data, value.content[1].mime_type) == ("aGk=", "image/png")
    assert value.content[2].uri == "docs://readme"
    assert value.structured == {"count": 1}
    assert value.is_error is False
