"""``notifications/tools/list_changed`` on a session queues a sync of the server (from a
worker thread of the session pool, so the tests commit and wait for it)."""

from __future__ import annotations

import time

import pytest
from mcp.server.mcpserver import Context

from automate_core.governance.models import AuditLog
from automate_core.outbox.models import OutboxJob
from automate_core.testing.live_server import wait_for
from mcp_bridge import services
from mcp_bridge.models import MCPServer

pytestmark = pytest.mark.django_db(transaction=True)


async def grow(ctx: Context) -> str:
    """Adds a tool and says so."""
    await ctx.notify_tools_changed()
    return "grown"


@pytest.fixture
def growing(approved_row, tool_server) -> MCPServer:
    tool_server.server.add_tool(grow, name="grow")
    approved_row.sync_tools()
    return approved_row


def test_a_list_changed_notice_during_a_call_queues_a_sync(growing):
    result = services.call(growing.tenant, growing.slug, "grow", {})

    assert result.text == "grown"
    job = wait_for(lambda: OutboxJob.objects.filter(kind="mcp.sync").first())
    assert job.payload == {"server": str(growing.pk)}
    growing.refresh_from_db()
    assert growing.status == MCPServer.Status.QUEUED
    audit = AuditLog.objects.get(action="mcp.server.sync_queued")
    assert audit.actor == "system:list_changed"


def test_a_notice_while_a_sync_is_queued_queues_no_other(growing):
    services.call(growing.tenant, growing.slug, "grow", {})
    wait_for(lambda: OutboxJob.objects.filter(kind="mcp.sync").first())
    services.call(growing.tenant, growing.slug, "grow", {})
    time.sleep(0.5)  # the second notice's thread has run by now

    assert OutboxJob.objects.filter(kind="mcp.sync").count() == 1


def test_a_call_without_a_notice_queues_nothing(approved_row):
    services.call(approved_row.tenant, approved_row.slug, "add", {"a": 1, "b": 2})

    assert not OutboxJob.objects.filter(kind="mcp.sync").exists()
