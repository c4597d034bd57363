"""Datasets defined in the admin and in code, and the role command."""

from __future__ import annotations

import pytest
from django.core.exceptions import ValidationError
from django.core.management import call_command

from automate_core.tenancy.models import Tenant
from automate_datachat import register_dataset, table
from automate_datachat.errors import DatasetNotFound, InvalidDataset
from automate_datachat.models import Dataset, DatasetTable
from automate_datachat.registry import resolve_dataset, unregister_dataset

from .shop import CUSTOMERS, RELATIONS


@pytest.fixture
def allowed(settings):
    settings.AUTOMATE_DATACHAT = {
        **settings.AUTOMATE_DATACHAT,
        "ALLOWED_TABLES": [CUSTOMERS],
        "ALLOWED_MODELS": ["testapp.Note"],
    }


def customers_table(dataset: Dataset, **overrides) -> DatasetTable:
    values = {
        "dataset": dataset,
        "alias": "customers",
        "relation": CUSTOMERS,
        "tenant_column": "tenant_id",
        "columns": ["id", {"name": "country", "samples": ["de"]}],
    }
    return DatasetTable(**{**values, **overrides})


def test_an_admin_defined_dataset_becomes_a_bound_definition(db, tenant, allowed):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop", row_cap=50)
    customers_table(dataset).save()
    definition = dataset.definition()
    assert definition.tenant_id == str(tenant.pk) and definition.row_cap == 50
    assert definition.table("customers").column_names == ("id", "country")


def test_a_valid_table_passes_clean(db, tenant, allowed, shop_tenants):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")
    customers_table(dataset).full_clean()


def test_a_relation_outside_the_allowlist_is_refused(db, tenant, shop_tenants):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")
    with pytest.raises(ValidationError, match="ALLOWED_TABLES"):
        customers_table(dataset).full_clean()


def test_a_column_the_relation_lacks_is_refused(db, tenant, allowed, shop_tenants):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")
    with pytest.raises(ValidationError, match="password"):
        customers_table(dataset, columns=["id", "password"]).full_clean()


def test_tenant_owned_needs_the_table_listed_for_the_tenant(db, tenant, allowed, shop_tenants):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")
    with pytest.raises(ValidationError, match="TENANT_OWNED_TABLES"):
        customers_table(dataset, tenant_column="", tenant_owned=True).full_clean()


def test_a_model_backed_table_uses_its_table_and_tenant_column(db, tenant, allowed):
    dataset = Dataset.objects.create(tenant=tenant, name="Notes")
    notes = DatasetTable(
        dataset=dataset, alias="notes", model_label="testapp.Note", columns=["title"]
    )
    notes.full_clean()
    definition = notes.definition()
    assert (definition.relation, definition.tenant_column) == ("testapp_note", "tenant_id")


@pytest.mark.parametrize("alias", ["pg_orders", "_dc_x", "Orders", "a-b"])
def test_reserved_or_unquoted_unsafe_aliases_are_refused(alias):
    with pytest.raises(InvalidDataset):
        register_dataset(
            "bad", tables=[table(alias, relation="t", tenant_owned=True, columns=["a"])]
        )


def test_a_table_needs_exactly_one_tenant_scoping():
    with pytest.raises(InvalidDataset, match="tenant"):
        register_dataset("bad", tables=[table("t", relation="t", columns=["a"])])


def test_a_registered_dataset_is_offered_only_to_the_tenants_named(db):
    a = Tenant.objects.create(name="A", slug="reg-a")
    b = Tenant.objects.create(name="B", slug="reg-b")
    register_dataset(
        "limited",
        tenants=["reg-a"],
        tables=[table("t", relation="t", tenant_column="tenant_id", columns=["x"])],
    )
    try:
        assert resolve_dataset(a, "limited").tenant_id == str(a.pk)
        with pytest.raises(DatasetNotFound):
            resolve_dataset(b, "limited")
    finally:
        unregister_dataset("limited")


def test_a_tenants_own_dataset_takes_precedence_over_a_registered_one(db, tenant, allowed):
    register_dataset(
        "shop2", tables=[table("t", relation="t", tenant_column="tenant_id", columns=["x"])]
    )
    try:
        dataset = Dataset.objects.create(tenant=tenant, name="Shop", slug="shop2")
        customers_table(dataset).save()
        assert resolve_dataset(tenant, "shop2").table("customers") is not None
    finally:
        unregister_dataset("shop2")


def test_the_role_command_is_idempotent(db, shop_tenants, capsys):
    call_command("datachat_role", relation=[*RELATIONS, "no_such_table"])
    call_command("datachat_role", relation=[*RELATIONS, "no_such_table"])
    out = capsys.readouterr().out
    assert f"SELECT on {CUSTOMERS}" in out and "no_such_table does not exist" in out


def test_the_dataset_admin_pages_render(admin_client, db, tenant, allowed):
    dataset = Dataset.objects.create(tenant=tenant, name="Shop")
    customers_table(dataset).save()
    assert admin_client.get("/admin/automate_datachat/dataset/").status_code == 200
    page = admin_client.get(f"/admin/automate_datachat/dataset/{dataset.pk}/change/")
    assert page.status_code == 200 and b"customers" in page.content
    assert f"/admin/automate_datachat/dataset/{dataset.pk}/ask/".encode() in page.content
    assert admin_client.get("/admin/automate_datachat/dataset/add/").status_code == 200
    assert admin_client.get("/admin/automate_datachat/datasettable/").status_code == 200


def _role_may_read(relation: str) -> bool:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT has_table_privilege('automate_datachat', %s, 'SELECT')", [relation])
        return cursor.fetchone()[0]


@pytest.mark.parametrize("manage", [True, False])
def test_migrate_sets_up_the_role_when_the_setting_says_so(db, shop_tenants, settings, manage):
    from django.apps import apps
    from django.core.management.sql import emit_post_migrate_signal
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE datachat_role_probe (id int)")
    settings.AUTOMATE_DATACHAT = {
        **settings.AUTOMATE_DATACHAT,
        "MANAGE_ROLE": manage,
        "ALLOWED_TABLES": ["datachat_role_probe"],
    }
    emit_post_migrate_signal(0, False, "default", plan=[], apps=apps)
    assert _role_may_read("datachat_role_probe") is manage


def test_a_flush_does_not_touch_the_role(db, shop_tenants, settings):
    from django.core.management.sql import emit_post_migrate_signal

    settings.AUTOMATE_DATACHAT = {**settings.AUTOMATE_DATACHAT, "MANAGE_ROLE": True}
    emit_post_migrate_signal(0, False, "default")  # what flush sends: no plan
    assert _role_may_read(CUSTOMERS)
