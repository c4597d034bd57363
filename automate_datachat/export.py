"""CSV export of query results, safe to open in a spreadsheet.

Cells hold the JSON form of each value (:func:`automate_datachat.results.json_value`): NULL is
an empty cell, numbers and booleans as JSON writes them, dates and timestamps ISO 8601,
json/jsonb and arrays as JSON text. A text cell that a spreadsheet would read as a formula
(starting with ``=``, ``+``, ``-``, ``@``, a tab or a carriage return) is prefixed with ``'``;
number columns are left alone, so ``-5`` stays a number.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Iterator, Sequence
from typing import Any

from automate_datachat.results import json_value

#: Postgres types whose cells are numbers (never formulas).
NUMBER_TYPES = frozenset({"int2", "int4", "int8", "oid", "float4", "float8", "numeric"})
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_lines(columns: Sequence[tuple[str, str]], rows: Iterable[Sequence[Any]]) -> Iterator[str]:
    """A header line of the column names, then one line per row, one at a time (for a
    streamed response). ``columns`` are ``(name, Postgres type)`` pairs; ``rows`` hold Python
    values or their JSON form."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)

    def line(cells: Iterable[str]) -> str:
        writer.writerow(cells)
        text = buffer.getvalue()
        buffer.seek(0)
        buffer.truncate()
        return text

    yield line(_safe(name) for name, _ in columns)
    numeric = [type_ in NUMBER_TYPES for _, type_ in columns]
    for row in rows:
        yield line(_cell(value, number) for value, number in zip(row, numeric, strict=True))


def _cell(value: Any, number: bool) -> str:
    value = json_value(value)
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float) or (number and isinstance(value, str)):
        return str(value)
    return _safe(value if isinstance(value, str) else json.dumps(value, ensure_ascii=False))


def _safe(text: str) -> str:
    return f"'{text}" if text.startswith(FORMULA_STARTS) else text
