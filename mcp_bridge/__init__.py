"""MCP: servers, tool sync and pinning, tool steps, the platform as an MCP server."""
