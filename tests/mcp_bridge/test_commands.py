"""``manage.py mcp_sync``, the ``mcp.sync`` outbox job, and the conformance client command."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import CommandError, call_command

from automate_core.outbox.models import OutboxJob
from automate_core.testing.runtime import run_until_idle
from mcp_bridge import services
from mcp_bridge.models import MCPServer, MCPTool

from .conftest import add

pytestmark = pytest.mark.django_db(transaction=True)


def test_mcp_sync_prints_progress_and_a_summary(server_row):
    out = StringIO()

    call_command("mcp_sync", server_row.slug, "--progress", stdout=out)

    lines = out.getvalue().splitlines()
    assert "acme/tools: tools 2" in lines
    assert lines[-1].startswith("acme/tools: 2 tools in 1 page(s); created 2 (add, echo)")
    assert MCPTool.objects.filter(server=server_row, status="pending").count() == 2


def test_mcp_sync_again_reports_no_change(server_row):
    call_command("mcp_sync", stdout=StringIO())
    out = StringIO()

    call_command("mcp_sync", stdout=out)

    assert out.getvalue().strip().endswith("no change")


def test_mcp_sync_reports_a_refused_server_and_fails(tenant):
    MCPServer.objects.create(tenant=tenant, name="Meta", url="http://169.254.169.254/mcp")
    err = StringIO()

    with pytest.raises(CommandError, match="1 server"):
        call_command("mcp_sync", stdout=StringIO(), stderr=err)

    assert "Egress denied" in err.getvalue()


def test_a_queued_sync_runs_as_an_outbox_job(server_row):
    job = services.queue_sync(server_row, actor="user:1")
    assert MCPServer.objects.get(pk=server_row.pk).status == "queued"

    run_until_idle()

    assert OutboxJob.objects.get(pk=job.pk).status == "done"
    assert MCPServer.objects.get(pk=server_row.pk).status == "ready"
    assert MCPTool.objects.filter(server=server_row).count() == 2


def test_the_conformance_client_initializes_and_calls_the_scenarios_tool(tool_server, monkeypatch):
    tool_server.add(add, name="add_numbers")
    monkeypatch.setenv("MCP_CONFORMANCE_SCENARIO", "tools_call")
    out = StringIO()

    call_command("mcp_conformance_client", tool_server.url, stdout=out)

    assert tool_server.calls[-1].tool == "add_numbers"
    assert "5" in out.getvalue()
