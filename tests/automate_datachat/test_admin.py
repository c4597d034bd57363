"""The dataset admin's Ask page: staff ask through the API's service and see the SQL, the
table, the chart as an image and a CSV download, on the dataset's tenant only, audited."""

from __future__ import annotations

import pytest
from django.contrib.auth.models import Permission, User

from automate_core.governance.models import AuditLog
from automate_core.tenancy.models import TenantMembership
from automate_core.testing.runtime import run_until_idle
from automate_datachat.models import Dataset, DatasetTable
from automate_llm.testing import Reply

from .shop import B_MARKER, CUSTOMERS, ORDERS
from .test_ask import REVENUE

pytestmark = pytest.mark.django_db


@pytest.fixture
def admin_dataset(settings, shop_tenants) -> Dataset:
    settings.AUTOMATE_DATACHAT = {
        **settings.AUTOMATE_DATACHAT,
        "ALLOWED_TABLES": [CUSTOMERS, ORDERS],
    }
    dataset = Dataset.objects.create(tenant=shop_tenants[0], name="Shop", slug="admin-shop")
    for alias, relation, columns in (
        ("customers", CUSTOMERS, ["id", "name", "country"]),
        ("orders", ORDERS, ["id", "customer_id", "total"]),
    ):
        DatasetTable.objects.create(
            dataset=dataset,
            alias=alias,
            relation=relation,
            tenant_column="tenant_id",
            columns=columns,
        )
    return dataset


def test_staff_ask_and_see_sql_table_chart_and_csv(
    admin_client, admin_user, admin_dataset, wire, shop_model
):
    wire.script(Reply(output=REVENUE))
    url = f"/admin/automate_datachat/dataset/{admin_dataset.pk}/ask/"
    page = admin_client.post(url, {"question": "Revenue by country?"})
    assert page.status_code == 200
    answer = page.context["answer"]
    html = page.content.decode()
    assert answer.result.row_count == 5 and answer.sql in page.context["answer"].sql
    assert "<table>" in html and "revenue" in html and B_MARKER not in html
    chart = admin_client.get(page.context["chart_url"])
    assert chart["Content-Type"] == "image/svg+xml" and chart.content.lstrip().startswith(b"<svg")
    assert f'<img class="ask-chart" src="{page.context["chart_url"]}"' in html
    csv = b"".join(admin_client.get(page.context["csv_url"]).streaming_content).decode()
    assert csv.splitlines()[0] == "country,revenue" and len(csv.splitlines()) == 6
    run_until_idle()
    entry = AuditLog.objects.filter(action="datachat.query").latest("seq")
    assert entry.actor == f"user:{admin_user.pk}" and entry.tenant_id == admin_dataset.tenant_id


def test_staff_of_another_tenant_cannot_open_the_ask_page(client, admin_dataset, shop_tenants):
    staff = User.objects.create_user("b-staff", password="x", is_staff=True)
    staff.user_permissions.add(Permission.objects.get(codename="view_dataset"))
    TenantMembership.objects.create(user=staff, tenant=shop_tenants[1])
    client.force_login(staff)
    response = client.get(f"/admin/automate_datachat/dataset/{admin_dataset.pk}/ask/")
    assert response.status_code == 404
