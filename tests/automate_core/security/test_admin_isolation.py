"""The admin: superusers see every tenant; a staff member of tenant A sees and acts on A's rows
only (``TenantScopedAdmin`` scopes querysets, actions and foreign-key choices by membership)."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib import admin
from django.contrib.auth.models import Permission
from django.db import models
from django.urls import NoReverseMatch, reverse

from automate_core.executions.models import Execution
from automate_core.tenancy.models import Tenant, TenantMembership

from .conftest import World

pytestmark = pytest.mark.django_db


ADMIN_APPS = (
    "automate_core",
    "automate_llm",
    "rag",
    "automate_datachat",
    "automate_modal",
    "mcp_bridge",
    "widgets",
)


def _registered() -> list[type[models.Model]]:
    return sorted(
        (m for m in admin.site._registry if m._meta.app_label in ADMIN_APPS),
        key=lambda m: m.__name__,
    )


def _tenant_lookup(model: type[models.Model]) -> str | None:
    """The ORM path from ``model`` to its tenant, one hop through a foreign key at most."""
    if model is Tenant:
        return "pk"
    fields = {f.name: f for f in model._meta.get_fields()}
    if "tenant" in fields:
        return "tenant_id"
    for field in fields.values():
        target = getattr(field, "related_model", None)
        if field.many_to_one and "tenant" in {f.name for f in target._meta.get_fields()}:
            return f"{field.name}__tenant_id"
    return None


def _rows_of(model: type[models.Model], tenant: Tenant) -> list[str]:
    lookup = _tenant_lookup(model)
    assert lookup is not None, f"{model.__name__} is in the admin but has no path to a tenant"
    return [
        str(pk)
        for pk in model._base_manager.filter(**{lookup: tenant.pk}).values_list("pk", flat=True)
    ]


def _changelist(model: type[models.Model]) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")


@pytest.fixture
def staff_of_a(world: World, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_user("sam", "sam@example.com", "pw", is_staff=True)
    user.user_permissions.set(
        Permission.objects.filter(content_type__app_label__in=ADMIN_APPS).filter(
            codename__regex=r"^(view|change)_"
        )
    )
    TenantMembership.objects.create(tenant=world.a.tenant, user=user)
    return user


@pytest.fixture
def staff_client(client, staff_of_a):
    client.force_login(staff_of_a)
    return client


def _listed(client: Any, model: type[models.Model]) -> str:
    response = client.get(_changelist(model), {"all": ""})
    assert response.status_code == 200
    return response.content.decode()


@pytest.mark.parametrize("model", _registered(), ids=lambda m: m.__name__)
def test_superuser_sees_every_tenants_rows(world, admin_client, model):
    text = _listed(admin_client, model)
    for tenant in (world.a.tenant, world.b.tenant):
        rows = _rows_of(model, tenant)
        assert rows, f"the world has no {model.__name__} of {tenant}"
        assert any(pk in text for pk in rows), f"{model.__name__}: {tenant}'s rows are missing"


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, id=m.__name__) for m in _registered()],
)
def test_staff_member_of_a_sees_none_of_b_rows_in_lists(world, staff_client, model):
    text = _listed(staff_client, model)
    assert any(pk in text for pk in _rows_of(model, world.a.tenant)), "own rows missing"
    leaked = [pk for pk in _rows_of(model, world.b.tenant) if pk in text]
    assert not leaked, f"{model.__name__} changelist shows tenant B's rows"


@pytest.mark.parametrize(
    "model",
    [pytest.param(m, id=m.__name__) for m in _registered()],
)
def test_staff_member_of_a_cannot_open_b_rows(world, staff_client, model):
    pk = _rows_of(model, world.b.tenant)[0]
    try:
        url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_change", args=[pk])
    except NoReverseMatch:  # pragma: no cover - every registered model has a change view
        pytest.fail(f"{model.__name__} has no change view")
    response = staff_client.get(url)
    # The admin answers a pk outside the queryset with a redirect to the index.
    assert response.status_code in (302, 404), f"{model.__name__}: {response.status_code}"


def test_staff_member_of_a_cannot_cancel_b_runs_with_an_action(world, staff_client):
    target = world.b.waiting_run
    staff_client.post(
        _changelist(Execution),
        {"action": "cancel_runs", "_selected_action": [str(target.pk)], "index": 0},
    )
    assert Execution.objects.get(pk=target.pk).status == "waiting"


def test_staff_without_permissions_sees_nothing(world, client, django_user_model):
    user = django_user_model.objects.create_user("nobody", "n@example.com", "pw", is_staff=True)
    client.force_login(user)
    for model in _registered():
        assert client.get(_changelist(model)).status_code == 403, model.__name__


@pytest.mark.parametrize("view", ["diff", "console"])
def test_staff_member_of_a_cannot_open_b_prompt_version_tools(world, staff_client, view):
    theirs = reverse(f"admin:automate_llm_promptversion_{view}", args=[world.b.prompt_draft.pk])
    response = staff_client.get(theirs)
    assert response.status_code in (302, 404)
    assert "globex draft" not in response.content.decode()
    posted = staff_client.post(theirs, {"variables": '{"q": "x"}'})
    assert posted.status_code in (302, 404)
    assert "globex draft" not in posted.content.decode()
    mine = reverse(f"admin:automate_llm_promptversion_{view}", args=[world.a.prompt_draft.pk])
    assert staff_client.get(mine).status_code == 200


def test_staff_member_of_a_cannot_publish_b_drafts_with_an_action(world, staff_client):
    from automate_llm.models import PromptVersion

    staff_client.post(
        _changelist(PromptVersion),
        {"action": "publish_drafts", "_selected_action": [str(world.b.prompt_draft.pk)]},
    )
    assert not PromptVersion.objects.get(pk=world.b.prompt_draft.pk).is_published
