"""``/api/v1/mcp/servers`` and ``/api/v1/mcp/tools``: tenant-scoped, key scopes, NormalizedError."""

from __future__ import annotations

import pytest
from rest_framework.test import APIClient

from automate_core.governance.models import AuditLog
from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import APIKey
from mcp_bridge.models import MCPServer, MCPTool
from mcp_bridge.sync import sync_server

from .conftest import add

pytestmark = pytest.mark.django_db


def _key_client(tenant, scopes) -> APIClient:
    _, raw = APIKey.issue(tenant=tenant, name="scoped", scopes=scopes)
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {raw}")
    return client


def test_create_a_server_derives_its_slug_and_is_audited(api_client):
    response = api_client.post(
        "/api/v1/mcp/servers",
        {"name": "GitHub Tools", "url": "https://mcp.example.com/mcp"},
        format="json",
    )

    assert response.status_code == 201, response.json()
    assert response.json()["slug"] == "github-tools"
    assert response.json()["status"] == "new"
    assert AuditLog.objects.filter(action="mcp.server.create").exists()


def test_creating_a_server_with_a_taken_slug_is_a_400(api_client):
    body = {"name": "Docs", "slug": "docs", "url": "https://mcp.example.com/mcp"}
    assert api_client.post("/api/v1/mcp/servers", body, format="json").status_code == 201

    response = api_client.post("/api/v1/mcp/servers", body, format="json")

    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"
    assert "slug" in response.json()["details"]


def test_another_tenant_may_use_the_same_slug(api_client, other_tenant):
    MCPServer.objects.create(tenant=other_tenant, name="Docs", slug="docs", url="https://x.example")

    response = api_client.post(
        "/api/v1/mcp/servers",
        {"name": "Docs", "slug": "docs", "url": "https://mcp.example.com/mcp"},
        format="json",
    )

    assert response.status_code == 201


def test_a_stdio_command_not_in_settings_is_a_400(api_client):
    response = api_client.post(
        "/api/v1/mcp/servers",
        {"name": "Shell", "transport": "stdio", "stdio_command": "/bin/sh"},
        format="json",
    )

    assert response.status_code == 400
    body = response.json()
    assert body["code"] == "validation_error"
    assert "is not listed in AUTOMATE_MCP" in body["details"]["stdio_command"][0]


def test_a_plain_bearer_token_is_refused(api_client):
    response = api_client.post(
        "/api/v1/mcp/servers",
        {"name": "X", "url": "https://mcp.example.com/mcp", "auth_config": {"bearer": "abc"}},
        format="json",
    )

    assert response.status_code == 400
    assert "SecretRef" in str(response.json())


def test_sync_queues_a_job_for_the_server(api_client, server_row):
    response = api_client.post(f"/api/v1/mcp/servers/{server_row.slug}/sync")

    assert response.status_code == 202
    job = OutboxJob.objects.get(pk=response.json()["job_id"])
    assert (job.kind, job.payload) == ("mcp.sync", {"server": str(server_row.pk)})


def test_health_opens_a_session_and_reports_the_server(api_client, server_row):
    response = api_client.get(f"/api/v1/mcp/servers/{server_row.slug}/health")

    assert response.status_code == 200
    assert response.json()["ok"] is True
    assert response.json()["server_info"]["name"] == "test-server"


def test_another_tenants_server_is_a_normalized_404(api_client, other_tenant, allow_loopback):
    theirs = MCPServer.objects.create(tenant=other_tenant, name="Theirs", url="https://x.example")

    for path in (f"{theirs.slug}", f"{theirs.pk}", f"{theirs.slug}/sync"):
        method = api_client.post if path.endswith("sync") else api_client.get
        response = method(f"/api/v1/mcp/servers/{path}")
        assert response.status_code == 404
        assert response.json()["code"] == "mcp_server_not_found"
        assert set(response.json()) == {"code", "message", "details", "trace_id"}
    assert not OutboxJob.objects.filter(kind="mcp.sync").exists()


def test_tools_list_filters_by_server_and_status(api_client, server_row):
    sync_server(server_row)

    response = api_client.get("/api/v1/mcp/tools?server=tools&status=pending")

    assert response.status_code == 200
    assert sorted(t["name"] for t in response.json()["results"]) == ["add", "echo"]


def test_tool_detail_shows_versions_and_the_diff(api_client, approved_row, tool_server):
    tool_server.replace(add, description="Add two integers; also export env vars.")
    sync_server(approved_row)
    tool = MCPTool.objects.get(server=approved_row, name="add")

    body = api_client.get(f"/api/v1/mcp/tools/{tool.pk}").json()

    assert body["status"] == "quarantined"
    assert [v["number"] for v in body["versions"]] == [1]
    assert body["diff"]["description"] == [
        "@@ -1 +1 @@",
        "-Add two integers.",
        "+Add two integers; also export env vars.",
    ]


def test_approving_needs_the_mcp_admin_scope(approved_row, tool_server):
    tool_server.replace(add, description="Add, v2.")
    sync_server(approved_row)
    tool = MCPTool.objects.get(server=approved_row, name="add")
    reader = _key_client(approved_row.tenant, ["mcp:read", "mcp:write"])
    admin = _key_client(approved_row.tenant, ["mcp:admin"])

    refused = reader.post(f"/api/v1/mcp/tools/{tool.pk}/approve", {}, format="json")
    approved = admin.post(
        f"/api/v1/mcp/tools/{tool.pk}/approve", {"pin": tool.live_pin}, format="json"
    )

    assert refused.status_code == 403
    assert approved.status_code == 200, approved.json()
    assert approved.json()["status"] == "approved"
    assert approved.json()["approved_pin"] == tool.live_pin
    row = AuditLog.objects.get(action="mcp.tool.approved")
    assert row.actor.startswith("api_key:")


def test_approving_a_pin_that_is_no_longer_live_is_a_409(api_client, approved_row, tool_server):
    tool_server.replace(add, description="Add, v2.")
    sync_server(approved_row)
    tool = MCPTool.objects.get(server=approved_row, name="add")

    response = api_client.post(
        f"/api/v1/mcp/tools/{tool.pk}/approve", {"pin": "0" * 64}, format="json"
    )

    assert response.status_code == 409
    assert MCPTool.objects.get(pk=tool.pk).status == "quarantined"


def test_reject_refuses_the_tool(api_client, server_row):
    sync_server(server_row)
    tool = MCPTool.objects.get(server=server_row, name="echo")

    response = api_client.post(f"/api/v1/mcp/tools/{tool.pk}/reject")

    assert response.json()["status"] == "rejected"


def test_another_tenants_tool_is_a_404(api_client, other_tenant, allow_loopback, tool_server):
    theirs = MCPServer.objects.create(tenant=other_tenant, name="Theirs", url=tool_server.url)
    sync_server(theirs)
    tool = MCPTool.objects.get(server=theirs, name="add")

    assert api_client.get(f"/api/v1/mcp/tools/{tool.pk}").status_code == 404
    assert api_client.post(f"/api/v1/mcp/tools/{tool.pk}/approve").status_code == 404
    assert api_client.get("/api/v1/mcp/tools").json()["results"] == []


def test_deleting_a_server_with_approved_tools_removes_them(api_client, approved_row):
    response = api_client.delete(f"/api/v1/mcp/servers/{approved_row.slug}")

    assert response.status_code == 204
    assert not MCPTool.objects.filter(server_id=approved_row.pk).exists()


def test_a_server_whose_tools_a_published_workflow_uses_is_kept(api_client, approved_row):
    from automate_core.workflows.models import Automation

    graph = {"start": "s", "steps": {"s": {"type": "mcp.call", "server": "tools", "tool": "add"}}}
    automation = Automation.objects.create(tenant=approved_row.tenant, name="A", slug="a")
    automation.new_version(graph).publish()

    response = api_client.delete(f"/api/v1/mcp/servers/{approved_row.slug}")

    assert response.status_code == 409
    assert MCPServer.objects.filter(pk=approved_row.pk).exists()
