"""Scheduled syncs, queued by the workers' maintenance (``mcp.scheduled_syncs``)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from automate_core.outbox import maintenance
from automate_core.outbox.models import OutboxJob
from mcp_bridge.models import MCPServer
from mcp_bridge.schedule import due_servers, queue_due_syncs

pytestmark = pytest.mark.django_db


def _server(tenant, slug: str, *, synced_ago: timedelta | None = None, **fields) -> MCPServer:
    synced = timezone.now() - synced_ago if synced_ago is not None else None
    return MCPServer.objects.create(
        tenant=tenant,
        name=slug,
        slug=slug,
        url="https://mcp.example.com/mcp",
        last_synced_at=synced,
        **fields,
    )


def test_a_server_never_synced_is_due(tenant):
    server = _server(tenant, "new")

    assert due_servers() == [server]


def test_a_server_synced_within_its_interval_is_not_due(tenant):
    _server(tenant, "fresh", synced_ago=timedelta(minutes=59))

    assert due_servers() == []


def test_a_server_synced_longer_ago_than_the_default_interval_is_due(tenant, settings):
    settings.AUTOMATE_MCP = {"SYNC_INTERVAL_MINUTES": 30}
    server = _server(tenant, "stale", synced_ago=timedelta(minutes=31))

    assert due_servers() == [server]


def test_a_servers_own_interval_overrides_the_default(tenant):
    hourly = _server(tenant, "hourly", synced_ago=timedelta(minutes=6), sync_interval_minutes=5)
    _server(tenant, "never", sync_interval_minutes=0)

    assert due_servers() == [hourly]


def test_queued_syncing_and_disabled_servers_are_skipped(tenant):
    for status in ("queued", "syncing", "disabled"):
        _server(tenant, status, status=status)

    assert due_servers() == []


def test_a_queued_sync_is_not_queued_again_before_the_interval(tenant):
    server = _server(tenant, "errored", status="error", sync_queued_at=timezone.now())

    assert server not in due_servers()


def test_the_maintenance_task_queues_a_sync_job_per_due_server(tenant):
    server = _server(tenant, "due")
    _server(tenant, "fresh", synced_ago=timedelta(minutes=1))

    assert "mcp.scheduled_syncs" in {task.name for task in maintenance.tasks()}
    queue_due_syncs()

    [job] = OutboxJob.objects.filter(kind="mcp.sync")
    assert job.payload == {"server": str(server.pk)}
    server.refresh_from_db()
    assert server.status == MCPServer.Status.QUEUED
    assert server.sync_queued_at is not None
