"""Bind parameters: ``:name`` placeholders become ``$n`` and values are sent apart from the SQL,
so a value that looks like SQL stays a value."""

from __future__ import annotations

import pytest

from automate_datachat import guard, services
from automate_datachat.errors import SQLRejected

from .shop import B_MARKER

INJECTIONS = [
    "de' OR '1'='1",
    "de'; DROP TABLE datachat_shop_order; --",
    "x' UNION SELECT secret_note FROM datachat_shop_customer --",
    "$$ OR true $$",
    "%(country)s",
]


def run(tenant, dataset, sql, **params):
    return services.run_sql(tenant=tenant, dataset=dataset, sql=sql, params=params)


def test_a_placeholder_becomes_a_positional_parameter(dataset_a):
    guarded = guard.check(
        "SELECT id FROM customers WHERE country = :country OR name = :name OR country = :country",
        dataset_a,
        params=["country", "name"],
    )
    assert guarded.parameters == ("country", "name")
    assert "$1" in guarded.sql and "$2" in guarded.sql and ":country" not in guarded.sql


def test_a_parameter_filters_like_a_literal(db, shop_tenants, dataset_a):
    bound = run(shop_tenants[0], dataset_a, "SELECT id FROM customers WHERE country = :c", c="de")
    literal = run(shop_tenants[0], dataset_a, "SELECT id FROM customers WHERE country = 'de'")
    assert bound.rows == literal.rows and bound.row_count > 0


def test_a_numeric_comparison_takes_a_parameter(db, shop_tenants, dataset_a):
    result = run(
        shop_tenants[0], dataset_a, "SELECT count(*) FROM orders WHERE total > :least", least=0
    )
    assert result.rows[0][0] > 0


@pytest.mark.parametrize("value", INJECTIONS)
def test_a_value_containing_sql_stays_a_value(db, shop_tenants, dataset_a, value):
    result = run(
        shop_tenants[0],
        dataset_a,
        "SELECT name, country FROM customers WHERE country = :country",
        country=value,
    )
    assert result.rows == []
    assert B_MARKER not in repr(result.rows)


def test_a_placeholder_without_a_value_is_refused(dataset_a):
    with pytest.raises(SQLRejected) as caught:
        guard.check("SELECT id FROM customers WHERE country = :other", dataset_a, params=["c"])
    assert caught.value.reason == "unknown_parameter"


@pytest.mark.parametrize(
    "sql", ["SELECT id FROM customers WHERE id = $1", "SELECT id FROM customers WHERE id = ?"]
)
def test_other_parameter_forms_are_refused(dataset_a, sql):
    with pytest.raises(SQLRejected) as caught:
        guard.check(sql, dataset_a, params=["id"])
    assert caught.value.reason in ("parameter_not_allowed", "parse_error")


def test_without_params_a_placeholder_is_refused(dataset_a):
    with pytest.raises(SQLRejected):
        guard.check("SELECT id FROM customers WHERE country = :country", dataset_a)


def test_a_percent_sign_in_the_sql_is_left_alone_with_parameters(db, shop_tenants, dataset_a):
    result = run(
        shop_tenants[0],
        dataset_a,
        "SELECT count(*) FROM customers WHERE email LIKE '%@%' AND country = :c",
        c="de",
    )
    assert result.rows[0][0] > 0
