"""The executor: the database stops what the guard refuses even when the guard is bypassed;
results are capped, typed and JSON-safe; every run is audited without its values."""

from __future__ import annotations

import hashlib

import pytest
from django.db import connection

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import Tenant
from automate_core.testing.runtime import run_until_idle
from automate_datachat import executor, services
from automate_datachat.errors import SQLExecutionFailed, SQLRejected, SQLTimeout

from .attacks import EXECUTOR_STOPS
from .shop import CUSTOMERS, ORDERS

BYPASS = [(category, sql) for category, items in EXECUTOR_STOPS.items() for sql in items]


def shop_fingerprint() -> tuple:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT (SELECT count(*) FROM {ORDERS}), (SELECT sum(total) FROM {ORDERS}), "  # noqa: S608
            f"(SELECT count(*) FROM {CUSTOMERS}), to_regclass('stolen')"
        )
        return cursor.fetchone()


@pytest.mark.parametrize(("category", "sql"), BYPASS)
def test_the_database_stops_a_refused_statement_sent_past_the_guard(
    category, sql, db, shop_tenants
):
    before = shop_fingerprint()
    with pytest.raises(SQLExecutionFailed):
        executor.execute_sql(sql, row_cap=10)
    assert shop_fingerprint() == before


def test_the_role_reads_the_backing_tables_without_the_guard(db, shop_tenants):
    # The control for the test above: the role and its connection work.
    result = executor.execute_sql(f"SELECT count(*) FROM {ORDERS}", row_cap=10)  # noqa: S608
    assert result.rows[0][0] > 0


def test_the_role_connection_is_read_only_and_not_superuser(db, shop_tenants):
    result = executor.execute_sql(
        "SELECT current_setting('transaction_read_only'), current_setting('is_superuser'), "
        "current_user",
        row_cap=1,
    )
    assert result.rows == [("on", "off", "automate_datachat")]


def test_a_long_query_is_cancelled_by_the_statement_timeout(db, shop_tenants):
    with pytest.raises(SQLTimeout):
        executor.execute_sql("SELECT pg_sleep(5)", row_cap=1)
    assert executor.execute_sql("SELECT 1", row_cap=1).rows == [(1,)]  # connection still usable


def test_results_beyond_the_row_cap_are_truncated(db, shop_tenants, shop_dataset):
    import dataclasses

    small = dataclasses.replace(shop_dataset, row_cap=7).bind(shop_tenants[0].pk)
    result = services.run_sql(tenant=shop_tenants[0], dataset=small, sql="SELECT id FROM orders")
    assert (result.row_count, result.truncated) == (7, True)
    assert result.sql.endswith("LIMIT 8")


def test_a_result_within_the_row_cap_is_not_truncated(db, shop_tenants, dataset_a):
    result = services.run_sql(
        tenant=shop_tenants[0], dataset=dataset_a, sql="SELECT id FROM orders LIMIT 3"
    )
    assert (result.row_count, result.truncated) == (3, False)


def test_results_carry_column_types_and_json_safe_values(db, shop_tenants, dataset_a):
    result = services.run_sql(
        tenant=shop_tenants[0],
        dataset=dataset_a,
        sql="SELECT id, total, placed_at, placed_at::date AS day, NULL::text AS nothing, "
        "interval '1 day 2 hours' AS span FROM orders ORDER BY id LIMIT 1",
    )
    assert [(c.name, c.type) for c in result.columns] == [
        ("id", "int4"),
        ("total", "numeric"),
        ("placed_at", "timestamptz"),
        ("day", "date"),
        ("nothing", "text"),
        ("span", "interval"),
    ]
    row = result.to_json()["rows"][0]
    assert isinstance(row[0], int) and isinstance(row[1], str)
    assert row[2].startswith("20") and "T" in row[2]
    assert row[3].count("-") == 2 and row[4] is None and row[5] == "P1DT02H00M00S"


def test_a_result_frame_has_typed_columns_and_exact_numerics(db, shop_tenants, dataset_a):
    from decimal import Decimal

    result = services.run_sql(
        tenant=shop_tenants[0],
        dataset=dataset_a,
        sql="SELECT id, total, placed_at, quantity > 1 AS many, NULL::int AS missing "
        "FROM orders ORDER BY id LIMIT 3",
    )
    frame = result.frame()
    assert list(frame.columns) == ["id", "total", "placed_at", "many", "missing"]
    assert [str(t) for t in frame.dtypes] == [
        "Int64",
        "object",
        "datetime64[ns, UTC]",
        "boolean",
        "Int64",
    ]
    assert frame["total"].tolist() == [row[1] for row in result.rows]
    assert isinstance(frame["total"][0], Decimal) and frame["missing"].isna().all()
    assert result.frame() is frame


def test_run_sql_audits_the_query_without_values(db, shop_tenants, dataset_a):
    sql = "SELECT name FROM customers WHERE id = 1"
    result = services.run_sql(tenant=shop_tenants[0], dataset=dataset_a, sql=sql, actor="user:7")
    run_until_idle()
    entry = AuditLog.objects.filter(action="datachat.query").latest("seq")
    assert entry.actor == "user:7" and entry.tenant_id == shop_tenants[0].pk
    assert entry.target == "datachat:shop"
    assert entry.data["sql_sha256"] == hashlib.sha256(sql.encode()).hexdigest()
    assert entry.data["row_count"] == 1 and entry.data["outcome"] == "ok"
    assert result.rows[0][0] not in repr(entry.data)


def test_a_refused_query_is_audited_with_its_reason(db, shop_tenants, dataset_a):
    with pytest.raises(SQLRejected):
        services.run_sql(tenant=shop_tenants[0], dataset=dataset_a, sql="SELECT pg_sleep(1)")
    run_until_idle()
    entry = AuditLog.objects.filter(action="datachat.query").latest("seq")
    assert entry.data["outcome"] == "sql_rejected"
    assert entry.data["reason"] == "function_not_allowed"


def test_a_dataset_bound_to_another_tenant_is_not_found(db, shop_tenants, dataset_b):
    from automate_datachat.errors import DatasetNotFound

    with pytest.raises(DatasetNotFound):
        services.run_sql(tenant=shop_tenants[0], dataset=dataset_b, sql="SELECT 1")


def test_a_dataset_slug_resolves_to_the_registered_dataset(db, shop_tenants, shop_dataset):
    result = services.run_sql(
        tenant=shop_tenants[0], dataset="shop", sql="SELECT count(*) FROM customers"
    )
    assert result.rows == [(40,)]


def test_the_audit_row_carries_the_trace_id_of_the_query(db, shop_tenants, dataset_a):
    from automate_core.tracing import trace

    with trace("dc-trace-1"):
        services.run_sql(tenant=shop_tenants[0], dataset=dataset_a, sql="SELECT 1 AS one")
    run_until_idle()
    entry = AuditLog.objects.filter(action="datachat.query").latest("seq")
    assert entry.trace_id == "dc-trace-1"


def test_a_query_outside_a_transaction_queues_its_audit_in_one_statement(
    shop_tenants, dataset_a, django_db_blocker
):
    from django.test.utils import CaptureQueriesContext

    from automate_core.outbox.models import OutboxJob
    from automate_datachat.auditing import AUDIT_JOB

    with django_db_blocker.unblock():
        assert connection.get_autocommit()
        # The row again if a transactional test flushed it: this insert commits.
        tenant, _ = Tenant.objects.get_or_create(
            pk=shop_tenants[0].pk, defaults={"name": "Shop A", "slug": "shop-a"}
        )
        try:
            with CaptureQueriesContext(connection) as queries:
                services.run_sql(tenant=tenant, dataset=dataset_a, sql="SELECT 1 AS one")
            job = OutboxJob.objects.get(kind=AUDIT_JOB)
            with connection.cursor() as cursor:
                cursor.execute("SHOW synchronous_commit")
                session_setting = cursor.fetchone()[0]
        finally:
            OutboxJob.objects.filter(kind=AUDIT_JOB).delete()
    assert len(queries) == 1
    assert job.tenant_id == shop_tenants[0].pk and job.payload["data"]["outcome"] == "ok"
    assert session_setting == "on"


def test_a_repeated_query_reuses_the_checked_sql(dataset_a):
    from automate_datachat import guard

    sql = "SELECT country, count(*) FROM customers GROUP BY country"
    assert guard.check(sql, dataset_a) is guard.check(sql, dataset_a)
    assert guard.check(sql, dataset_a) == guard.check_uncached(sql, dataset_a)
