"""Domain errors. Each has an HTTP status and a stable code; the API's exception handler turns
any of them into the NormalizedError shape ``{code, message, details, trace_id}``."""

from __future__ import annotations

from typing import Any


class AutomateError(Exception):
    status_code = 400
    code = "error"
    default_message = "The request could not be completed."

    def __init__(self, message: str | None = None, *, details: Any = None) -> None:
        self.message = message or self.default_message
        self.details = details if details is not None else {}
        super().__init__(self.message)


class NotFoundError(AutomateError):
    status_code = 404
    code = "not_found"
    default_message = "Not found."


class ConflictError(AutomateError):
    status_code = 409
    code = "conflict"
    default_message = "The resource is not in a state that allows this."


class InvalidInputError(AutomateError):
    status_code = 400
    code = "invalid_input"
    default_message = "Invalid input."
