"""Query results: a pandas DataFrame inside the service, JSON (and CSV, see
:mod:`automate_datachat.export`) at the edges.

JSON mapping (docs/datachat.md "Results"): NULL is ``null``; integers, floats and booleans stay
numbers/booleans (NaN and infinities become the strings ``"NaN"``, ``"Infinity"``,
``"-Infinity"``); numerics (``Decimal``) become strings, so no digit is lost; dates, times and
timestamps are ISO 8601 strings; intervals ISO 8601 durations; UUIDs strings; arrays lists;
json/jsonb values as they are; bytes base64.

DataFrame mapping (:meth:`QueryResult.frame`): integer, float and boolean columns get pandas'
nullable dtypes (``Int64``, ``Float64``, ``boolean``; NULL is ``pd.NA``), timestamps
``datetime64`` (UTC for ``timestamptz``; NULL is ``NaT``); every other column keeps the Python
values (``Decimal`` for numerics, so no digit is lost; ``date``; ``str``) with NULL as None.
"""

from __future__ import annotations

import base64
import datetime as dt
import math
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from django.utils.duration import duration_iso_string

if TYPE_CHECKING:
    import pandas as pd

#: Postgres types by the pandas dtype their columns get in a DataFrame.
_INTEGER_TYPES = frozenset({"int2", "int4", "int8", "oid"})
_FLOAT_TYPES = frozenset({"float4", "float8"})


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

    def frame(self) -> pd.DataFrame:
        """The rows as a DataFrame (see the module docstring), built on first use and kept;
        callers must not change it in place."""
        built = self.__dict__.get("_frame")
        if built is None:
            built = self.__dict__["_frame"] = _frame(self.columns, self.rows)
        return built

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


def _frame(columns: list[ResultColumn], rows: list[tuple[Any, ...]]) -> pd.DataFrame:
    import pandas as pd

    # Positional labels while typing, so that two columns of one name stay apart.
    frame = pd.DataFrame.from_records(rows, columns=range(len(columns)), coerce_float=False)
    for position, column in enumerate(columns):
        values = frame[position]
        if column.type in _INTEGER_TYPES:
            frame[position] = values.astype("Int64")
        elif column.type in _FLOAT_TYPES:
            frame[position] = values.astype("Float64")
        elif column.type == "bool":
            frame[position] = values.astype("boolean")
        elif column.type in ("timestamp", "timestamptz"):
            frame[position] = pd.to_datetime(values, utc=column.type == "timestamptz")
        else:
            frame[position] = values.astype(object).where(values.notna(), None)
    frame.columns = pd.Index([column.name for column in columns])
    return frame
