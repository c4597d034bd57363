"""Errors of the MCP bridge. Each is a core error class (not found, conflict, invalid input,
or a connector's upstream failure) with a stable MCP code of its own, so the API turns it into
a NormalizedError and a workflow step fails with a message that says what to do."""

from __future__ import annotations

from typing import Any

from automate_core.connectors.base import ConnectorError
from automate_core.errors import AutomateError, ConflictError, InvalidInputError, NotFoundError


class MCPServerNotFound(NotFoundError):
    code = "mcp_server_not_found"
    default_message = "No such MCP server in this tenant."


class MCPToolNotFound(NotFoundError):
    code = "mcp_tool_not_found"
    default_message = "No such MCP tool on this server."


class StdioCommandNotAllowed(InvalidInputError):
    """The server names a stdio command that ``AUTOMATE_MCP["STDIO_COMMANDS"]`` does not list."""

    code = "mcp_stdio_command_not_allowed"
    default_message = "This stdio command is not listed in AUTOMATE_MCP['STDIO_COMMANDS']."


class ToolNotCallable(ConflictError):
    """The tool is not approved as it is now (pending, quarantined, rejected or removed)."""

    code = "mcp_tool_not_callable"
    default_message = "This MCP tool is not approved for calls."

    def __init__(self, message: str | None = None, *, status: str, details: Any = None) -> None:
        self.status = status
        super().__init__(message, details={"status": status, **(details or {})})


class ToolDefinitionChanged(ToolNotCallable):
    """The server now describes the tool differently from the approved definition: the call
    was refused before anything was sent, and the tool is quarantined."""

    code = "mcp_tool_definition_changed"
    default_message = "The MCP tool's definition changed since it was approved; it is quarantined."


class ToolPinChanged(ToolNotCallable):
    """The tool's approved definition is no longer the one the workflow version was published
    with: a person approved a change since; publish a new version to use it."""

    code = "mcp_tool_pin_changed"
    default_message = "The MCP tool was approved anew since this workflow was published."


class InvalidToolArguments(InvalidInputError):
    """The arguments break the approved input schema or the tool's argument policy."""

    code = "mcp_invalid_arguments"
    default_message = "The arguments do not fit this MCP tool."


class MCPConnectionError(ConnectorError):
    """The server could not be reached, or the session broke (transient: a step retries)."""

    code = "mcp_connection_error"
    default_message = "The MCP server could not be reached."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        super().__init__(message or self.default_message, retryable=True, details=details)


class ToolCallTimeout(MCPConnectionError):
    status_code = 504
    code = "mcp_timeout"
    default_message = "The MCP tool call timed out."


class ToolCallRateLimited(AutomateError):
    status_code = 429
    code = "mcp_rate_limited"
    default_message = "Too many calls to this MCP server; retry later."

    def __init__(self, message: str | None = None, *, retry_after: float) -> None:
        self.retry_after = retry_after
        super().__init__(message, details={"retry_after": retry_after})


class ToolCallFailed(ConnectorError):
    """The server ran the tool and answered ``isError``; the message is the server's (the
    call was made: not retryable as such)."""

    code = "mcp_tool_error"
    default_message = "The MCP tool reported an error."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        super().__init__(message or self.default_message, retryable=False, details=details)
