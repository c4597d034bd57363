"""Tenant isolation by data: tenant B's marker never comes back to tenant A, whatever the query
joins, unions or filters on; and benign queries return exactly tenant A's answer."""

from __future__ import annotations

import psycopg
import pytest
from django.db import connection

from automate_datachat import services

from .benign import BENIGN
from .shop import B_ID_BASE, B_MARKER, HIDDEN_MARKER

ADVERSARIAL = [
    "SELECT * FROM customers",
    "SELECT * FROM orders WHERE true OR 1 = 1",
    "SELECT * FROM customers WHERE name LIKE '%LEAK%' OR country LIKE '%LEAK%'",
    "SELECT * FROM orders o JOIN customers c ON true",
    "SELECT * FROM orders o FULL JOIN customers c ON o.customer_id = c.id",
    "SELECT c.* FROM customers c LEFT JOIN orders o ON o.customer_id = c.id OR true",
    "SELECT name FROM customers UNION ALL SELECT status FROM orders",
    "SELECT id FROM customers WHERE id >= 100000 UNION SELECT id FROM orders WHERE id >= 100000",
    "SELECT * FROM orders WHERE customer_id IN (SELECT id FROM customers WHERE id > 99999)",
    "SELECT (SELECT max(name) FROM customers) AS top, (SELECT max(status) FROM orders)",
    "SELECT * FROM orders WHERE status = 'LEAK-B-7f3a'",
    "SELECT * FROM orders WHERE channel = 'internal' OR channel <> 'internal'",
    "SELECT * FROM orders WHERE status LIKE 'HIDDEN%'",
    "WITH orders AS (SELECT * FROM orders) SELECT * FROM orders",
    "WITH customers AS (SELECT * FROM customers WHERE true) "
    "SELECT * FROM customers UNION ALL SELECT * FROM customers",
    "WITH x AS (SELECT * FROM orders), orders AS (SELECT * FROM x) SELECT * FROM orders",
    "SELECT * FROM customers c, LATERAL (SELECT * FROM orders o WHERE o.customer_id >= 0) x",
    "SELECT * FROM customers c CROSS JOIN LATERAL (SELECT name FROM customers) n",
    "WITH RECURSIVE r AS (SELECT id, name FROM customers UNION "
    "SELECT c.id, c.name FROM customers c JOIN r ON c.id = r.id + 1) SELECT * FROM r",
    "WITH RECURSIVE r(i) AS (SELECT 99999 UNION ALL SELECT i + 1 FROM r WHERE i < 100040) "
    "SELECT * FROM r JOIN customers c ON c.id = r.i",
    "SELECT * FROM orders o WHERE EXISTS (SELECT 1 FROM customers c WHERE c.id <> o.id)",
    "SELECT string_agg(name, ',') FROM customers",
    "SELECT array_agg(status) FROM orders",
    "SELECT * FROM (SELECT * FROM (SELECT * FROM orders) a) b",
    "SELECT * FROM orders ORDER BY id DESC LIMIT 50",
    "SELECT max(id) FROM orders",
    "SELECT * FROM customers WHERE id = 100001",
]


def run_as_a(shop_tenants, dataset_a, sql: str):
    return services.run_sql(tenant=shop_tenants[0], dataset=dataset_a, sql=sql)


@pytest.mark.parametrize("sql", ADVERSARIAL)
def test_tenant_a_never_sees_tenant_b_or_filtered_rows(sql, db, shop_tenants, dataset_a):
    result = run_as_a(shop_tenants, dataset_a, sql)
    text = repr(result.rows)
    assert B_MARKER not in text
    assert HIDDEN_MARKER not in text
    assert not any(
        isinstance(value, int) and value >= B_ID_BASE for row in result.rows for value in row
    )


def test_tenant_b_sees_its_own_marked_rows(db, shop_tenants, dataset_b):
    result = services.run_sql(
        tenant=shop_tenants[1], dataset=dataset_b, sql="SELECT DISTINCT country FROM customers"
    )
    assert result.rows == [(B_MARKER,)]


@pytest.fixture(scope="module")
def reference(shop_tenants, django_db_blocker):
    """A superuser connection that reads tenant A's rows through hand-made views."""
    with django_db_blocker.unblock():
        params = connection.get_connection_params()
    conninfo = psycopg.conninfo.make_conninfo(
        **{k: params[k] for k in ("dbname", "host", "port", "user", "password") if params.get(k)}
    )
    with psycopg.connect(conninfo, autocommit=True) as conn:
        conn.execute("SET search_path = datachat_reference, public")
        yield conn


def normalized(rows) -> list[str]:
    return sorted(repr(tuple(row)) for row in rows)


@pytest.mark.parametrize("sql", BENIGN)
def test_benign_query_answers_like_the_tenants_own_rows(
    sql, db, shop_tenants, dataset_a, reference
):
    result = run_as_a(shop_tenants, dataset_a, sql)
    expected = reference.execute(sql.encode()).fetchall()
    assert not result.truncated
    assert normalized(result.rows) == normalized(expected)
