"""An MCP server over stdio, run as a subprocess by the stdio tests (``python stdio_server.py``)."""

from mcp.server.mcpserver import MCPServer

server = MCPServer("stdio-test")


@server.tool(description="Multiply two integers.")
def multiply(a: int, b: int) -> int:
    return a * b


if __name__ == "__main__":
    server.run("stdio")
