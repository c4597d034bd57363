"""Data chat errors; the API turns each into a NormalizedError
``{code, message, details, trace_id}``."""

from __future__ import annotations

from typing import Any

from automate_core.errors import AutomateError, InvalidInputError, NotFoundError


class SQLRejected(InvalidInputError):
    """The guard refused the SQL. ``details`` holds ``reason`` (a stable short code, e.g.
    ``function_not_allowed``) and ``node`` (the offending part, as SQL text)."""

    code = "sql_rejected"
    default_message = "The SQL was refused by the data chat guard."

    def __init__(self, message: str, *, reason: str, node: Any = None) -> None:
        super().__init__(message, details={"reason": reason, "node": _node_text(node)})
        self.reason = reason


class SQLExecutionFailed(AutomateError):
    """Postgres refused or aborted a guarded query (``details.sqlstate`` says why)."""

    status_code = 422
    code = "sql_failed"
    default_message = "The database could not run the query."


class SQLTimeout(SQLExecutionFailed):
    code = "sql_timeout"
    default_message = "The query ran longer than the statement timeout."


class DatasetNotFound(NotFoundError):
    code = "datachat_dataset_not_found"
    default_message = "No dataset with this slug in your tenant."


class InvalidDataset(InvalidInputError):
    code = "datachat_invalid_dataset"
    default_message = "The dataset definition is invalid."


def _node_text(node: Any) -> str | None:
    if node is None:
        return None
    sql = getattr(node, "sql", None)
    text = sql(dialect="postgres", comments=False) if callable(sql) else str(node)
    return text[:200]
