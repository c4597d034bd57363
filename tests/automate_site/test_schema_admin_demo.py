"""The OpenAPI schema, the docs page (served offline), the admin and the demo data."""

import re

import pytest
from django.core.management import call_command

from automate_core.tenancy.models import APIKey, Tenant

pytestmark = pytest.mark.django_db


def test_schema_describes_every_v1_endpoint(client):
    response = client.get("/api/schema/?format=json")
    assert response.status_code == 200
    schema = response.json()
    assert schema["openapi"].startswith("3.")
    assert {"/api/v1/tenant", "/api/v1/api-keys", "/api/v1/api-keys/{id}"} <= set(schema["paths"])
    assert schema["components"]["securitySchemes"]["apiKey"]["scheme"] == "bearer"


def test_schema_generates_without_warnings(tmp_path):
    """Every view declares what it takes and answers: drf-spectacular has nothing to guess."""
    call_command("spectacular", "--fail-on-warn", "--file", str(tmp_path / "schema.yml"))


def test_docs_page_uses_local_assets_only(client):
    response = client.get("/api/docs/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "swagger-ui" in html
    assert not re.search(r"https?://(cdn|unpkg|fonts)\.", html)


def test_admin_lists_every_core_model(admin_client, tenant):
    APIKey.issue(tenant=tenant, name="k")
    for path in ("tenant", "apikey"):
        assert admin_client.get(f"/admin/automate_core/{path}/").status_code == 200


def test_admin_shows_a_new_key_once_and_stores_only_its_hash(admin_client, tenant):
    response = admin_client.post(
        "/admin/automate_core/apikey/add/",
        {
            "tenant": tenant.pk,
            "name": "from admin",
            "scopes": "[]",
            "expires_at_0": "",
            "expires_at_1": "",
        },
        follow=True,
    )
    raw = re.search(r"dak_[A-Za-z0-9_-]+", response.content.decode()).group(0)
    assert APIKey.authenticate(raw).name == "from admin"
    listing = admin_client.get("/admin/automate_core/apikey/").content.decode()
    assert raw not in listing


def test_demo_command_creates_tenant_admin_and_key_once(capsys):
    call_command("automate_demo")
    first = capsys.readouterr().out
    raw = re.search(r"dak_[A-Za-z0-9_-]+", first).group(0)
    assert APIKey.authenticate(raw).tenant.slug == "demo"
    call_command("automate_demo")
    second = capsys.readouterr().out
    assert "dak_" not in second
    assert Tenant.objects.filter(slug="demo").count() == 1


def test_admin_shows_runtime_models_and_the_step_timeline(admin_client, tenant):
    from automate_core.testing.runtime import run_until_idle
    from automate_core.workflows import engine

    run = engine.start("three-steps", tenant=tenant)
    run_until_idle()
    for path in (
        "event",
        "execution",
        "automation",
        "workflowversion",
        "trigger",
        "webhooksource",
        "outboxjob",
    ):
        assert admin_client.get(f"/admin/automate_core/{path}/").status_code == 200, path
    page = admin_client.get(f"/admin/automate_core/execution/{run.pk}/change/").content.decode()
    assert "three" in page and "completed" in page


def test_admin_action_resumes_waiting_runs(admin_client, tenant):
    from automate_core.executions.models import Execution
    from automate_core.testing.runtime import run_until_idle
    from automate_core.workflows import engine

    run = engine.start("approval", tenant=tenant, user="a")
    run_until_idle()
    admin_client.post(
        "/admin/automate_core/execution/",
        {"action": "send_awaited_signal", "_selected_action": [str(run.pk)]},
    )
    run_until_idle()
    assert Execution.objects.get(pk=run.pk).status == "completed"


def test_admin_redacts_payloads_for_staff_without_the_raw_permission(client, admin_client, tenant):
    from django.contrib.auth.models import Permission, User

    from automate_core.events.ingest import ingestor
    from automate_core.tenancy.models import TenantMembership

    event = ingestor.ingest(
        "login", {"user": "ada", "password": "hunter2-hunter2"}, tenant=tenant
    ).event
    url = f"/admin/automate_core/event/{event.pk}/change/"
    staff = User.objects.create_user("staff", is_staff=True, password="pw-12345678")
    staff.user_permissions.add(Permission.objects.get(codename="view_event"))
    TenantMembership.objects.create(tenant=tenant, user=staff)
    client.force_login(staff)
    page = client.get(url).content.decode()
    assert "hunter2-hunter2" not in page and "[REDACTED]" in page
    assert "hunter2-hunter2" in admin_client.get(url).content.decode()


def test_demo_automation_runs_for_a_big_order():
    from automate_core.events.ingest import ingestor
    from automate_core.executions.models import Execution
    from automate_core.testing.runtime import run_until_idle

    call_command("automate_demo")
    demo = Tenant.objects.get(slug="demo")
    ingestor.ingest("order.paid", {"order_id": "A-1", "amount": 250}, tenant=demo)
    ingestor.ingest("order.paid", {"order_id": "A-2", "amount": 5}, tenant=demo)
    run_until_idle()
    [run] = Execution.objects.filter(tenant=demo)
    assert run.result == {"sent": "Thanks for order A-1!"}
