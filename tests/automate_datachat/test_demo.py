"""The demo shop ``make run`` ships: seeded for two tenants, offered to them only, and
answerable through the guard at once."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command
from django.db import connection

from automate_core.tenancy.models import Tenant
from automate_datachat import demo, services
from automate_datachat.errors import DatasetNotFound
from automate_datachat.role import ensure_role

from . import shop


@pytest.fixture(scope="module")
def demo_tenants(django_db_setup, django_db_blocker, shop_tenants):
    """The command run for real (committed, so the role's connection sees the tables)."""
    with django_db_blocker.unblock():
        call_command("datachat_demo", stdout=io.StringIO())
        ensure_role([*demo.RELATIONS, *shop.RELATIONS])
        yield Tenant.objects.get(slug="demo"), Tenant.objects.get(slug="demo-b")
        with connection.cursor() as cursor:
            cursor.execute(f"DROP TABLE {', '.join(reversed(demo.RELATIONS))}")
        Tenant.objects.filter(slug__in=demo.TENANTS).delete()
        ensure_role(shop.RELATIONS)


def count(relation: str, tenant: Tenant) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT count(*) FROM {relation} WHERE tenant_id = %s", [tenant.pk])  # noqa: S608
        return cursor.fetchone()[0]


def test_each_demo_tenant_gets_a_few_thousand_rows(db, demo_tenants):
    for tenant in demo_tenants:
        assert count(demo.CUSTOMERS, tenant) == demo.CUSTOMER_COUNT
        assert count(demo.ORDERS, tenant) == demo.ORDER_COUNT
        assert count(demo.ORDER_LINES, tenant) > demo.ORDER_COUNT


def test_running_the_demo_again_adds_nothing(db, demo_tenants):
    call_command("datachat_demo", stdout=io.StringIO())
    assert count(demo.ORDERS, demo_tenants[0]) == demo.ORDER_COUNT


def test_the_demo_dataset_answers_a_join_as_each_tenant_on_its_rows_only(db, demo_tenants):
    sql = (
        "SELECT p.category, sum(l.quantity * l.unit_price) AS revenue FROM order_lines l "
        "JOIN products p ON p.id = l.product_id GROUP BY p.category ORDER BY revenue DESC"
    )
    results = [
        services.run_sql(tenant=tenant, dataset=demo.SLUG, sql=sql) for tenant in demo_tenants
    ]
    assert all(result.row_count == len(demo.CATEGORIES) for result in results)
    assert results[0].rows != results[1].rows
    ids = services.run_sql(tenant=demo_tenants[1], dataset=demo.SLUG, sql="SELECT id FROM orders")
    assert min(row[0] for row in ids.rows) >= 2 * 10_000_000


def test_the_demo_dataset_is_offered_to_the_demo_tenants_only(db, demo_tenants, shop_tenants):
    with pytest.raises(DatasetNotFound):
        services.run_sql(tenant=shop_tenants[0], dataset=demo.SLUG, sql="SELECT 1")
