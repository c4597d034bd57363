"""Charts: built from a closed-set proposal over real result columns, valid Vega-Lite,
rendered offline; a proposal naming another column is refused."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from automate_datachat import charts
from automate_datachat.results import QueryResult, ResultColumn


def result() -> QueryResult:
    return QueryResult(
        columns=[ResultColumn("week", "date"), ResultColumn("revenue", "numeric")],
        rows=[(dt.date(2026, 1, 5), Decimal("120.50")), (dt.date(2026, 1, 12), Decimal("99"))],
        row_count=2,
        truncated=False,
        sql="SELECT ...",
        duration_ms=1.0,
    )


def proposal(**changes) -> charts.ChartProposal:
    values = {
        "mark": "line",
        "x": {"field": "week", "type": "temporal"},
        "y": {"field": "revenue", "type": "quantitative"},
        "title": "Revenue by week",
    }
    return charts.ChartProposal.model_validate({**values, **changes})


def test_the_spec_carries_the_rows_inline_as_numbers_and_dates():
    spec = charts.build_spec(proposal(), result())
    assert spec["mark"]["type"] == "line"
    assert spec["encoding"]["x"] == {"field": "week", "type": "temporal"}
    values = spec["data"]["values"]
    assert values == [
        {"week": "2026-01-05", "revenue": 120.5},
        {"week": "2026-01-12", "revenue": 99.0},
    ]
    assert "$schema" in spec


def test_an_arc_puts_the_value_on_theta_and_the_category_on_color():
    spec = charts.build_spec(proposal(mark="arc", x={"field": "week", "type": "nominal"}), result())
    assert set(spec["encoding"]) == {"theta", "color"}
    assert spec["encoding"]["theta"]["field"] == "revenue"


def test_a_field_that_is_not_a_result_column_is_refused():
    with pytest.raises(charts.ChartInvalid) as caught:
        charts.build_spec(proposal(y={"field": "cost", "type": "quantitative"}), result())
    assert caught.value.details["fields"] == ["cost"]


def test_a_mark_outside_the_closed_set_is_refused():
    with pytest.raises(ValueError):
        proposal(mark="text")


def test_a_spec_that_is_not_vega_lite_fails_validation():
    with pytest.raises(charts.ChartInvalid):
        charts.validate({"mark": "bar", "encoding": {"x": {"field": "a", "type": "wrong"}}})


def test_the_chart_renders_as_svg_and_png():
    spec = charts.build_spec(proposal(mark="bar"), result())
    assert charts.render(spec).lstrip().startswith(b"<svg")
    assert charts.render(spec, format="png").startswith(b"\x89PNG")


def test_rendering_loads_no_external_data():
    spec = charts.build_spec(proposal(), result())
    spec["data"] = {"url": "http://127.0.0.1:9/secret.json"}
    with pytest.raises(Exception, match=r"(?i)not allowed|permission|denied|access"):
        charts.render(spec)
