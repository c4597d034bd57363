"""Scheduled syncs: the workers' maintenance thread queues a sync of each server whose last
sync (or last queued sync) is older than its interval (``sync_interval_minutes``, else
``AUTOMATE_MCP["SYNC_INTERVAL_MINUTES"]``; 0 never). A server never synced is due at once. A
server already queued, syncing or disabled is skipped, so a slow sync is never queued twice.
"""

from __future__ import annotations

from datetime import timedelta

from django.db.models import DateTimeField, DurationField, ExpressionWrapper, F, Q, Value
from django.db.models.functions import Coalesce, Greatest
from django.utils import timezone

from mcp_bridge.conf import mcp_settings
from mcp_bridge.models import MCPServer

#: Servers queued per maintenance pass (the rest wait for the next pass, moments later).
BATCH = 50


def due_servers(now: object = None) -> list[MCPServer]:
    """Servers whose scheduled sync is due, oldest first, at most :data:`BATCH`."""
    default = int(mcp_settings.SYNC_INTERVAL_MINUTES or 0)
    interval = Coalesce(F("sync_interval_minutes"), Value(default))
    last = Greatest(F("last_synced_at"), F("sync_queued_at"), output_field=DateTimeField())
    due_before = ExpressionWrapper(
        Value(now or timezone.now())
        - ExpressionWrapper(interval * Value(timedelta(minutes=1)), output_field=DurationField()),
        output_field=DateTimeField(),
    )
    rows = (
        MCPServer.objects.annotate(interval=interval, last=last, due_before=due_before)
        .filter(interval__gt=0)
        .filter(Q(last__isnull=True) | Q(last__lt=F("due_before")))
        .exclude(
            status__in=[
                MCPServer.Status.QUEUED,
                MCPServer.Status.SYNCING,
                MCPServer.Status.DISABLED,
            ]
        )
        .select_related("tenant")
        .order_by(F("last").asc(nulls_first=True))
    )
    return list(rows[:BATCH])


def queue_due_syncs() -> bool:
    """Queue the due syncs; True when more may be due (the maintenance runs again soon)."""
    from mcp_bridge.services import queue_sync

    due = due_servers()
    for server in due:
        queue_sync(server, actor="system:schedule")
    return len(due) == BATCH
