"""``manage.py mcp_sync [server ...]``: sync MCP servers' tools here, in this process, with the
same code the ``mcp.sync`` outbox job runs; ``--queue`` enqueues the jobs instead.

Without server names every server that is not disabled is synced (of ``--tenant`` if given).
``--progress`` prints tools listed as pages arrive; each server ends with one summary line
(created, quarantined, restored, removed), and a failing server is reported and the others go
on (the exit status is 1 if any failed).
"""

from __future__ import annotations

import uuid
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db.models import Q

from automate_core.errors import AutomateError
from automate_core.tenancy.models import Tenant
from mcp_bridge import services
from mcp_bridge.models import MCPServer
from mcp_bridge.sync import SyncReport, sync_server


class Command(BaseCommand):
    help = "Sync MCP servers' tools (pin, quarantine changed tools, mark removed ones)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("servers", nargs="*", help="server slugs or ids (default: all)")
        parser.add_argument("--tenant", help="tenant slug")
        parser.add_argument("--progress", action="store_true", help="print listing progress")
        parser.add_argument("--queue", action="store_true", help="enqueue outbox jobs instead")

    def handle(self, *args: Any, **options: Any) -> None:
        servers = self._servers(options["tenant"], options["servers"])
        failed = 0
        for server in servers:
            if options["queue"]:
                services.queue_sync(server, actor="system:mcp_sync")
                self.stdout.write(f"{server.tenant.slug}/{server.slug}: queued")
                continue
            try:
                report = sync_server(
                    server,
                    progress=self._progress(server) if options["progress"] else None,
                    actor="system:mcp_sync",
                )
            except AutomateError as exc:
                failed += 1
                self.stderr.write(f"{server.tenant.slug}/{server.slug}: failed: {exc.message}")
                continue
            self.stdout.write(f"{server.tenant.slug}/{server.slug}: {_summary(report)}")
        if failed:
            raise CommandError(f"{failed} server(s) failed to sync")

    def _servers(self, tenant_slug: str | None, keys: list[str]) -> list[MCPServer]:
        rows = MCPServer.objects.select_related("tenant").order_by("tenant__slug", "slug")
        if tenant_slug:
            tenant = Tenant.objects.filter(slug=tenant_slug).first()
            if tenant is None:
                raise CommandError(f"No tenant {tenant_slug!r}")
            rows = rows.filter(tenant=tenant)
        if not keys:
            return list(rows.exclude(status=MCPServer.Status.DISABLED))
        found: list[MCPServer] = []
        for key in keys:
            matches = list(rows.filter(Q(slug=key) | Q(pk__in=_ids(key))))
            if len(matches) != 1:
                why = "no server" if not matches else "several servers (pass --tenant)"
                raise CommandError(f"{key!r} names {why}")
            found.extend(matches)
        return found

    def _progress(self, server: MCPServer) -> Any:
        def show(phase: str, done: int) -> None:
            self.stdout.write(f"{server.tenant.slug}/{server.slug}: {phase} {done}")

        return show


def _ids(key: str) -> list[str]:
    try:
        return [str(uuid.UUID(key))]
    except ValueError:
        return []


def _summary(report: SyncReport) -> str:
    parts = [f"{report.tools} tools in {report.pages} page(s)"]
    for name in ("created", "quarantined", "restored", "updated", "removed"):
        names = getattr(report, name)
        if names:
            parts.append(f"{name} {len(names)} ({', '.join(names[:10])})")
    if report.resources is not None:
        parts.append(f"{report.resources} resources")
    if report.prompts is not None:
        parts.append(f"{report.prompts} prompts")
    if not report.changed:
        parts.append("no change")
    return "; ".join(parts)
