"""The platform as an MCP server, mounted at ``/mcp`` beside Django (see docs/mcp.md)."""
