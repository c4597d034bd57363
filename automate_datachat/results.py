"""Query results, and their JSON form at the edges.

JSON mapping (docs/datachat.md "Results"): NULL is ``null``; integers, floats and booleans stay
numbers/booleans (NaN and infinities become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``); numerics (``Decimal``) become strings, so no digit is lost; dates, times and
timestamps are ISO 8601 strings; intervals ISO 8601 durations; UUIDs strings; arrays lists;
json/jsonb values as they are; bytes base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.utils.duration import duration_iso_string


@dataclass(frozen=True)
class ResultColumn:
    name: str
    #: The Postgres type name (``int8``, ``numeric``, ``timestamptz``, ...).
    type: str


@dataclass(frozen=True)
class QueryResult:
    """What a guarded query returned: at most the dataset's row cap of rows, as Python values."""

    columns: list[ResultColumn]
    rows: list[tuple[Any, ...]]
    row_count: int
    #: More rows existed than the row cap; ``rows`` holds the first ``row_cap`` of them.
    truncated: bool
    #: The SQL that ran (the guard's output, not the submitted text).
    sql: str
    duration_ms: float

    def json_rows(self) -> list[list[Any]]:
        return [[json_value(value) for value in row] for row in self.rows]

    def to_json(self) -> dict[str, Any]:
        return {
            "columns": [{"name": c.name, "type": c.type} for c in self.columns],
            "rows": self.json_rows(),
            "row_count": self.row_count,
            "truncated": self.truncated,
            "sql": self.sql,
            "duration_ms": self.duration_ms,
        }


def json_value(value: Any) -> Any:
    """One result value in its JSON form (see the module docstring)."""
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        if math.isfinite(value):
            return value
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, dt.timedelta):
        return duration_iso_string(value)
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, list | tuple):
        return [json_value(item) for item in value]
    if isinstance(value, dict):
        return {str(k): json_value(v) for k, v in value.items()}
    if isinstance(value, bytes | bytearray | memoryview):
        return base64.b64encode(bytes(value)).decode()
    return str(value)
