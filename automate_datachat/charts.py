"""Charts as data: the model proposes a chart from a closed set, the server builds the
Vega-Lite spec with the result rows inline, validates it against the Vega-Lite JSON schema
(the one altair ships) and renders it offline with ``vl-convert`` (no external URL may be
loaded). Nothing the model writes is ever executed: a proposal is a mark and field names that
must name result columns.
"""

from __future__ import annotations

import functools
import math
from decimal import Decimal
from typing import Any, Literal

import altair as alt
import vl_convert
from altair.utils.schemapi import validate_jsonschema
from altair.vegalite.v6.schema import load_schema
from pydantic import BaseModel, ConfigDict

from automate_core.errors import InvalidInputError
from automate_datachat.results import QueryResult, json_value

Mark = Literal["bar", "line", "area", "point", "arc"]
FieldType = Literal["quantitative", "temporal", "nominal", "ordinal"]
#: Rows put into a chart (a chart of more is unreadable, and its spec needlessly large).
MAX_CHART_ROWS = 5000


class ChartInvalid(InvalidInputError):
    code = "datachat_chart_invalid"
    default_message = "The chart cannot be built from this result."


class Encoding(BaseModel):
    model_config = ConfigDict(extra="forbid")

    field: str
    type: FieldType


class ChartProposal(BaseModel):
    """What the model may ask for: a mark, x and y (for ``arc``: the category and the value)
    and an optional color, each naming a result column with its Vega-Lite type."""

    model_config = ConfigDict(extra="forbid")

    mark: Mark
    x: Encoding
    y: Encoding
    color: Encoding | None = None
    title: str = ""


_ENCODING_SCHEMA = {
    "type": "object",
    "properties": {
        "field": {"type": "string", "description": "A column of the query's result."},
        "type": {"type": "string", "enum": ["quantitative", "temporal", "nominal", "ordinal"]},
    },
    "required": ["field", "type"],
    "additionalProperties": False,
}
#: The JSON schema of a proposal (or null: no chart fits), for structured output.
PROPOSAL_SCHEMA: dict[str, Any] = {
    "anyOf": [
        {"type": "null"},
        {
            "type": "object",
            "properties": {
                "mark": {"type": "string", "enum": ["bar", "line", "area", "point", "arc"]},
                "x": _ENCODING_SCHEMA,
                "y": _ENCODING_SCHEMA,
                "color": {"anyOf": [{"type": "null"}, _ENCODING_SCHEMA]},
                "title": {"type": "string"},
            },
            "required": ["mark", "x", "y", "color", "title"],
            "additionalProperties": False,
        },
    ]
}


def build_spec(proposal: ChartProposal, result: QueryResult) -> dict[str, Any]:
    """The Vega-Lite spec of ``proposal`` over ``result``'s rows (at most
    :data:`MAX_CHART_ROWS`), validated against the Vega-Lite schema. ``ChartInvalid`` when a
    field names no result column."""
    names = [column.name for column in result.columns]
    encodings = [proposal.x, proposal.y] + ([proposal.color] if proposal.color else [])
    unknown = sorted({e.field for e in encodings} - set(names))
    if unknown:
        raise ChartInvalid(
            f"The chart names columns the result does not have: {', '.join(unknown)}.",
            details={"fields": unknown, "columns": names},
        )
    values = [
        {name: _chart_value(value) for name, value in zip(names, row, strict=True)}
        for row in result.rows[:MAX_CHART_ROWS]
    ]
    chart = alt.Chart(alt.Data(values=values), title=proposal.title or alt.Undefined)
    channels: dict[str, Any]
    if proposal.mark == "arc":
        chart = chart.mark_arc()
        channels = {
            "theta": alt.Theta(_field(proposal.y.field), type=proposal.y.type),
            "color": alt.Color(_field(proposal.x.field), type=proposal.x.type),
        }
    else:
        chart = getattr(chart, f"mark_{proposal.mark}")()
        channels = {
            "x": alt.X(_field(proposal.x.field), type=proposal.x.type),
            "y": alt.Y(_field(proposal.y.field), type=proposal.y.type),
        }
        if proposal.color is not None:
            channels["color"] = alt.Color(_field(proposal.color.field), type=proposal.color.type)
    spec: dict[str, Any] = chart.encode(**channels).to_dict(validate=False)
    validate(spec)
    return spec


def validate(spec: dict[str, Any]) -> None:
    """Check ``spec`` against the Vega-Lite JSON schema (``ChartInvalid`` if it fails)."""
    error = validate_jsonschema(spec, _schema(), raise_error=False)
    if error is not None:
        raise ChartInvalid(
            f"The chart spec is not valid Vega-Lite: {error.message[:300]}",
            details={"path": "/".join(str(p) for p in error.absolute_path)},
        )


def render(spec: dict[str, Any], *, format: Literal["svg", "png"] = "svg") -> bytes:
    """The chart as an SVG (text) or PNG image, rendered in-process; no URL is fetched."""
    if format == "png":
        return bytes(vl_convert.vegalite_to_png(spec, allowed_base_urls=[]))
    return str(vl_convert.vegalite_to_svg(spec, allowed_base_urls=[])).encode()


@functools.cache
def _schema() -> dict[str, Any]:
    return load_schema()


def _field(name: str) -> str:
    """A column name as a Vega-Lite field: dots and brackets would otherwise mean nesting."""
    for char in ("\\", ".", "[", "]"):
        name = name.replace(char, "\\" + char)
    return name


def _chart_value(value: Any) -> Any:
    """Numbers as JSON numbers (a chart needs no exact decimals), the rest as in results."""
    if isinstance(value, Decimal):
        number = float(value)
        return number if math.isfinite(number) else None
    return json_value(value)
