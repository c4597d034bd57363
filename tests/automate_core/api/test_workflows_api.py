"""``/api/v1/automations`` with their versions, and ``/api/v1/triggers``: build and ship a
JSON-graph workflow over the API."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import AuditLog
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey
from automate_core.workflows.models import Automation, WorkflowVersion

pytestmark = pytest.mark.django_db

BASE = "/api/v1/automations"
GRAPH = {
    "start": "done",
    "steps": {"done": {"type": "complete", "result": {"ok": True}}},
}
GRAPH_V2 = {
    "start": "wait",
    "steps": {
        "wait": {"type": "wait", "signal": "approved", "next": "done"},
        "done": {"type": "complete", "result": {"ok": False}},
    },
}
BROKEN = {"start": "nowhere", "steps": {"done": {"type": "complete", "next": "missing"}}}


@pytest.fixture
def automation(tenant):
    return Automation.objects.create(tenant=tenant, name="Orders")


def _key_client(tenant, scopes):
    _, raw = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def _published(automation, graph=GRAPH, live=True):
    version = automation.new_version(graph)
    version.publish(make_live=live)
    return version


# -- automations ---------------------------------------------------------------------------------


def test_create_an_automation_derives_its_slug(api_client, tenant):
    response = api_client.post(BASE, {"name": "Order paid"}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["slug"], body["live_version"], body["latest_version"]) == (
        "order-paid",
        None,
        None,
    )
    assert Automation.objects.get(pk=body["id"]).tenant_id == tenant.pk


def test_creating_an_automation_is_audited(api_client, tenant):
    response = api_client.post(BASE, {"name": "Order paid"}, format="json")
    row = AuditLog.objects.get(action="automation.create")
    assert row.tenant_id == tenant.pk
    assert row.target == f"automation:{response.json()['id']}"
    assert row.actor.startswith("api_key:")


def test_an_automation_slug_already_taken_is_a_conflict(api_client, automation):
    response = api_client.post(BASE, {"name": "Other", "slug": "orders"}, format="json")
    assert response.status_code == 409
    assert response.json()["code"] == "conflict"


def test_an_automation_slug_cannot_change(api_client, automation):
    response = api_client.patch(f"{BASE}/orders", {"slug": "renamed"}, format="json")
    assert response.status_code == 400
    assert "slug" in response.json()["details"]


def test_an_automation_is_found_by_id_or_slug(api_client, automation):
    by_slug = api_client.get(f"{BASE}/orders").json()
    by_id = api_client.get(f"{BASE}/{automation.pk}").json()
    assert by_slug == by_id


def test_the_list_pages_with_a_cursor(api_client, tenant):
    for n in range(3):
        Automation.objects.create(tenant=tenant, name=f"A{n}")
    first = api_client.get(BASE, {"limit": 2}).json()
    second = api_client.get(first["next"]).json()
    assert len(first["results"]) == 2 and len(second["results"]) == 1


# -- drafts --------------------------------------------------------------------------------------


def test_a_draft_gets_the_next_number_and_is_not_published(api_client, automation):
    _published(automation)
    response = api_client.post(f"{BASE}/orders/versions", {"graph": GRAPH_V2}, format="json")
    assert response.status_code == 201
    body = response.json()
    assert (body["version"], body["is_published"], body["is_live"]) == (2, False, False)
    assert AuditLog.objects.filter(action="workflow_version.create").count() == 1


def test_a_draft_with_an_invalid_graph_is_refused_with_its_problems(api_client, automation):
    response = api_client.post(f"{BASE}/orders/versions", {"graph": BROKEN}, format="json")
    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "invalid_input"
    paths = {problem["path"] for problem in body["details"]["problems"]}
    assert {"start", "steps.done.next"} <= paths
    assert not automation.versions.exists()


def test_validate_returns_the_problems_without_saving(api_client, automation):
    response = api_client.post(f"{BASE}/orders/versions/validate", {"graph": BROKEN}, format="json")
    assert response.status_code == 200
    assert response.json()["valid"] is False
    assert response.json()["problems"]
    assert not automation.versions.exists()


def test_validate_accepts_a_valid_graph(api_client, automation):
    response = api_client.post(f"{BASE}/orders/versions/validate", {"graph": GRAPH}, format="json")
    assert response.json() == {"valid": True, "problems": []}


def test_a_draft_can_be_edited(api_client, automation):
    automation.new_version(GRAPH)
    response = api_client.patch(f"{BASE}/orders/versions/1", {"graph": GRAPH_V2}, format="json")
    assert response.status_code == 200
    assert WorkflowVersion.objects.get(automation=automation, version=1).graph == GRAPH_V2


# -- publish and make live -----------------------------------------------------------------------


def test_publish_freezes_the_version_without_making_it_live(api_client, automation):
    live = _published(automation)
    automation.new_version(GRAPH_V2)
    response = api_client.post(f"{BASE}/orders/versions/2/publish", {}, format="json")
    assert response.status_code == 200
    body = response.json()
    assert body["is_published"] is True and body["digest"]
    assert body["is_live"] is False
    assert automation.live_version == live


def test_publish_with_make_live_switches_the_live_version(api_client, automation):
    _published(automation)
    automation.new_version(GRAPH_V2)
    response = api_client.post(
        f"{BASE}/orders/versions/2/publish", {"make_live": True}, format="json"
    )
    assert response.json()["is_live"] is True
    assert automation.live_version.version == 2
    row = AuditLog.objects.filter(action="workflow.publish").order_by("-seq").first()
    assert row.data["version"] == 2 and row.actor.startswith("api_key:")


def test_a_published_version_cannot_be_edited(api_client, automation):
    _published(automation)
    response = api_client.patch(f"{BASE}/orders/versions/1", {"graph": GRAPH_V2}, format="json")
    assert response.status_code == 409
    assert WorkflowVersion.objects.get(automation=automation, version=1).graph == GRAPH


def test_make_live_rolls_back_to_an_earlier_published_version(api_client, automation):
    _published(automation)
    _published(automation, GRAPH_V2)
    response = api_client.post(f"{BASE}/orders/versions/1/make-live", format="json")
    assert response.status_code == 200
    assert automation.live_version.version == 1
    assert AuditLog.objects.filter(action="workflow.make_live").count() == 1


def test_a_draft_cannot_be_made_live(api_client, automation):
    automation.new_version(GRAPH)
    response = api_client.post(f"{BASE}/orders/versions/1/make-live", format="json")
    assert response.status_code == 409
    assert automation.live_version is None


# -- diff ----------------------------------------------------------------------------------------


def test_diff_lists_the_changes_between_two_versions(api_client, automation):
    _published(automation)
    automation.new_version(GRAPH_V2)
    body = api_client.get(f"{BASE}/orders/versions/2/diff", {"against": 1}).json()
    assert (body["from_version"], body["to_version"]) == (1, 2)
    assert body["steps"] == {"added": ["wait"], "removed": [], "changed": ["done"]}
    assert {"path": "start", "op": "changed", "before": "done", "after": "wait"} in body["changes"]
    assert [c["path"] for c in body["changes"]] == sorted(c["path"] for c in body["changes"])


def test_diff_compares_with_the_live_version_by_default(api_client, automation):
    _published(automation, GRAPH_V2)
    automation.new_version(GRAPH)
    body = api_client.get(f"{BASE}/orders/versions/2/diff").json()
    assert (body["from_version"], body["steps"]["removed"]) == (1, ["wait"])


def test_diff_with_nothing_live_needs_the_version_to_compare_with(api_client, automation):
    automation.new_version(GRAPH)
    response = api_client.get(f"{BASE}/orders/versions/1/diff")
    assert response.status_code == 400


# -- scopes --------------------------------------------------------------------------------------


def test_a_read_key_validates_but_cannot_create_a_draft(tenant, automation):
    client = _key_client(tenant, ["automations:read"])
    assert (
        client.post(f"{BASE}/orders/versions/validate", {"graph": GRAPH}, format="json").status_code
        == 200
    )
    response = client.post(f"{BASE}/orders/versions", {"graph": GRAPH}, format="json")
    assert response.status_code == 403


def test_a_write_key_cannot_publish(tenant, automation):
    automation.new_version(GRAPH)
    client = _key_client(tenant, ["automations:write"])
    response = client.post(f"{BASE}/orders/versions/1/publish", {}, format="json")
    assert response.status_code == 403
    assert not automation.versions.get().is_published


def test_a_publish_key_can_publish(tenant, automation):
    automation.new_version(GRAPH)
    client = _key_client(tenant, ["automations:publish"])
    response = client.post(f"{BASE}/orders/versions/1/publish", {}, format="json")
    assert response.status_code == 200


# -- triggers ------------------------------------------------------------------------------------


def test_a_trigger_pins_a_published_version_by_number(api_client, tenant, automation):
    _published(automation)
    response = api_client.post(
        "/api/v1/triggers",
        {"name": "big", "event_type": "order.paid", "automation": "orders", "version": 1,
         "condition": {">": [{"var": "payload.amount"}, 100]}},
        format="json",
    )  # fmt: skip
    assert response.status_code == 201, response.content
    assert response.json()["version"] == 1 and response.json()["automation"] == "orders"
    trigger = Trigger.objects.get(pk=response.json()["id"])
    assert trigger.tenant_id == tenant.pk and trigger.version.version == 1
    assert AuditLog.objects.filter(action="trigger.create").count() == 1


def test_a_trigger_cannot_pin_a_draft(api_client, automation):
    automation.new_version(GRAPH)
    response = api_client.post(
        "/api/v1/triggers",
        {"name": "t", "event_type": "x", "automation": "orders", "version": 1},
        format="json",
    )
    assert response.status_code == 400
    assert "version" in response.json()["details"]


def test_a_trigger_with_invalid_jsonlogic_is_refused(api_client, automation):
    response = api_client.post(
        "/api/v1/triggers",
        {"name": "t", "event_type": "x", "automation": "orders", "condition": {"nope": [1]}},
        format="json",
    )
    assert response.status_code == 400
    assert "condition" in response.json()["details"]


def test_a_trigger_cannot_start_another_tenants_automation(api_client, other_tenant):
    Automation.objects.create(tenant=other_tenant, name="Theirs")
    response = api_client.post(
        "/api/v1/triggers",
        {"name": "t", "event_type": "x", "automation": "theirs"},
        format="json",
    )
    assert response.status_code == 400
    assert not Trigger.objects.exists()


def test_triggers_filter_by_automation(api_client, tenant, automation):
    other = Automation.objects.create(tenant=tenant, name="Other")
    Trigger.objects.create(tenant=tenant, name="a", event_type="x", automation=automation)
    Trigger.objects.create(tenant=tenant, name="b", event_type="x", automation=other)
    body = api_client.get("/api/v1/triggers", {"automation": "other"}).json()
    assert [t["name"] for t in body["results"]] == ["b"]
