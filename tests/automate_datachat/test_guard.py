# ruff: noqa: S608  (expected SQL text)
"""The guard, layer by layer, then the attack and benign corpora against the whole of it."""

from __future__ import annotations

import pytest
from sqlglot import exp

from automate_datachat import guard
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.errors import SQLRejected

from .attacks import all_attacks
from .benign import BENIGN
from .shop import CUSTOMERS, ORDERS, shop_dataset

TENANT = "8f14e45f-ceea-467a-9575-6c1f1ba2f0c1"


@pytest.fixture(scope="module")
def dataset() -> DatasetDefinition:
    from automate_datachat.registry import unregister_dataset

    definition = shop_dataset(row_cap=100).bind(TENANT)
    unregister_dataset("shop")
    return definition


def rejected(sql: str, dataset: DatasetDefinition) -> SQLRejected:
    with pytest.raises(SQLRejected) as caught:
        guard.check(sql, dataset)
    return caught.value


# -- layer 1: one plain query -------------------------------------------------------------------


def test_parse_accepts_one_select():
    assert isinstance(guard.parse_statement("SELECT 1;"), exp.Select)


def test_parse_refuses_two_statements():
    with pytest.raises(SQLRejected, match="Exactly one statement") as caught:
        guard.parse_statement("SELECT 1; SELECT 2")
    assert caught.value.details["reason"] == "statement_count"


@pytest.mark.parametrize("sql", ["DELETE FROM orders", "SET role postgres", "VALUES (1)"])
def test_parse_refuses_statements_that_are_not_queries(sql):
    with pytest.raises(SQLRejected) as caught:
        guard.parse_statement(sql)
    assert caught.value.details["reason"] == "not_a_query"


def test_parse_refuses_unparseable_text():
    with pytest.raises(SQLRejected) as caught:
        guard.parse_statement("SELECT (1")
    assert caught.value.details["reason"] == "parse_error"


def test_parse_refuses_unicode_escapes_sqlglot_misreads():
    with pytest.raises(SQLRejected) as caught:
        guard.parse_statement('SELECT * FROM U&"pg_\\0063lass"')
    assert caught.value.details["reason"] == "unicode_escape"


@pytest.mark.parametrize(
    ("sql", "node"),
    [
        (
            "WITH d AS (DELETE FROM orders RETURNING *) SELECT * FROM d",
            "DELETE FROM orders RETURNING *",
        ),
        ("SELECT * INTO t FROM orders", "INTO t"),
        ("SELECT * FROM orders FOR UPDATE", "FOR UPDATE"),
        ("SELECT $$x$$", "'x'"),
    ],
)
def test_nodes_outside_the_allowlist_are_refused_and_named(sql, node):
    with pytest.raises(SQLRejected) as caught:
        guard.check_nodes(guard.parse_statement(sql))
    assert caught.value.details == {"reason": "node_not_allowed", "node": node}


# -- layer 3: functions and types ---------------------------------------------------------------


@pytest.mark.parametrize(
    "sql", ["SELECT pg_sleep(1)", "SELECT set_config('a', 'b', false)", "SELECT lo_import('x')"]
)
def test_functions_outside_the_allowlist_are_refused(sql):
    with pytest.raises(SQLRejected) as caught:
        guard.check_nodes(guard.parse_statement(sql))
    assert caught.value.details["reason"] == "function_not_allowed"


def test_allowlisted_functions_pass_in_any_case():
    guard.check_nodes(guard.parse_statement("SELECT AGE(now()), To_Char(now(), 'YYYY')"))


def test_quoted_function_names_are_refused_even_when_allowlisted():
    with pytest.raises(SQLRejected):
        guard.check_nodes(guard.parse_statement('SELECT "AGE"(now())'))


def test_casts_to_object_identifier_types_are_refused():
    with pytest.raises(SQLRejected):
        guard.check_nodes(guard.parse_statement("SELECT 'pg_authid'::regclass"))


def test_casts_to_plain_types_pass():
    guard.check_nodes(guard.parse_statement("SELECT '1'::int, '2024-01-01'::date, 1::numeric"))


# -- layer 2: tables and columns ----------------------------------------------------------------


def test_dataset_aliases_are_the_only_tables(dataset):
    tree = guard.parse_statement("SELECT o.id FROM orders o JOIN customers c ON true")
    references = guard.resolve_tables(tree, dataset)
    assert sorted(table.alias for _, table in references) == ["customers", "orders"]


@pytest.mark.parametrize("sql", [f"SELECT * FROM {ORDERS}", "SELECT * FROM public.orders"])
def test_backing_tables_and_schema_qualified_names_are_refused(sql, dataset):
    with pytest.raises(SQLRejected) as caught:
        guard.resolve_tables(guard.parse_statement(sql), dataset)
    assert caught.value.details["reason"] == "table_not_allowed"


def test_columns_qualified_by_a_dataset_table_must_be_allowed(dataset):
    with pytest.raises(SQLRejected) as caught:
        guard.resolve_tables(
            guard.parse_statement("SELECT c.secret_note FROM customers c"), dataset
        )
    assert caught.value.details == {"reason": "column_not_allowed", "node": "c.secret_note"}


def test_unknown_unqualified_columns_are_refused(dataset):
    with pytest.raises(SQLRejected) as caught:
        guard.resolve_tables(guard.parse_statement("SELECT tenant_id FROM orders"), dataset)
    assert caught.value.details["reason"] == "column_not_allowed"


def test_ctes_are_renamed_and_may_shadow_an_alias(dataset):
    tree = guard.parse_statement("WITH orders AS (SELECT * FROM orders) SELECT * FROM orders")
    references = guard.resolve_tables(tree, dataset)
    assert len(references) == 1  # only the CTE body reads the dataset table
    assert "WITH _dc_cte_1 AS" in tree.sql(dialect="postgres")


def test_a_plain_cte_cannot_see_itself(dataset):
    with pytest.raises(SQLRejected):
        guard.resolve_tables(guard.parse_statement("WITH x AS (SELECT * FROM x) SELECT 1"), dataset)


def test_a_recursive_cte_sees_itself(dataset):
    sql = "WITH RECURSIVE r(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM r) SELECT n FROM r"
    tree = guard.parse_statement(sql)
    assert guard.resolve_tables(tree, dataset) == []
    assert "FROM _dc_cte_1 AS r" in tree.sql(dialect="postgres")


# -- layer 4: tenant-scoped subqueries ----------------------------------------------------------


def test_tables_become_tenant_scoped_subqueries_of_allowed_columns(dataset):
    sql = guard.check("SELECT * FROM customers", dataset).sql
    assert sql == (
        'SELECT * FROM (SELECT "id", "name", "email", "country", "segment", "signed_up_at" '
        f'FROM "{CUSTOMERS}" WHERE "tenant_id" = \'{TENANT}\') AS customers LIMIT 101'
    )


def test_row_filters_are_part_of_the_subquery(dataset):
    sql = guard.check("SELECT id FROM orders o", dataset).sql
    assert f"\"tenant_id\" = '{TENANT}' AND \"channel\" IN ('web', 'store')) AS o" in sql


def test_a_tenant_owned_table_has_no_tenant_predicate():
    from automate_datachat.registry import table

    owned = DatasetDefinition(
        slug="own",
        row_cap=10,
        tables=(table("events", relation="acme_events", tenant_owned=True, columns=["kind"]),),
    ).bind(TENANT)
    assert guard.check("SELECT kind FROM events", owned).sql == (
        'SELECT kind FROM (SELECT "kind" FROM "acme_events") AS events LIMIT 11'
    )


def test_check_needs_a_bound_dataset(dataset):
    import dataclasses

    with pytest.raises(ValueError, match="bound"):
        guard.check("SELECT 1", dataclasses.replace(dataset, tenant_id=None))


# -- layer 5: row cap ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "limit"),
    [
        ("SELECT id FROM orders", 101),
        ("SELECT id FROM orders LIMIT 5", 5),
        ("SELECT id FROM orders LIMIT 100000", 101),
        ("SELECT id FROM orders LIMIT ALL", 101),
        ("SELECT id FROM orders LIMIT (SELECT 100000)", 101),
        ("SELECT id FROM orders UNION SELECT id FROM customers", 101),
    ],
)
def test_the_outer_limit_is_capped_at_row_cap_plus_one(sql, limit, dataset):
    guarded = guard.check(sql, dataset)
    assert guarded.limit == limit
    assert guarded.sql.endswith(f"LIMIT {limit}")


# -- the corpora --------------------------------------------------------------------------------


def test_the_attack_corpus_has_at_least_150_statements():
    assert len(all_attacks()) >= 150


@pytest.mark.parametrize(("category", "sql"), all_attacks())
def test_attack_is_refused(category, sql, dataset):
    rejected(sql, dataset)


def test_the_benign_corpus_has_at_least_60_queries():
    assert len(BENIGN) >= 60


@pytest.mark.parametrize("sql", BENIGN)
def test_benign_query_is_accepted(sql, dataset):
    guarded = guard.check(sql, dataset)
    assert guard.parse_statement(guarded.sql)  # the generated SQL parses back


def test_generated_sql_drops_comments(dataset):
    assert "secret" not in guard.check("SELECT id /* secret */ FROM orders -- x", dataset).sql
