"""``manage.py rag_sync``: sync knowledge sources (or rebuild an endpoint) with a progress bar.

By default the work runs here, in this process, with the same code the outbox jobs run.
``--queue`` hands it to the workers instead (and with ``--progress`` follows the source's
progress until the job finishes).
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import CommandError, CommandParser
from tqdm import tqdm

from automate_core.errors import AutomateError
from automate_core.management.base import DatabaseCommand
from automate_core.tenancy.models import Tenant
from rag import services
from rag.models import KnowledgeSource, RAGEndpoint


class _Bar:
    """One tqdm bar whose total and phase follow the progress callbacks."""

    def __init__(self, label: str, out: Any, enabled: bool) -> None:
        self.label, self.out, self.enabled = label, out, enabled
        self.bar: tqdm[Any] | None = None
        self.phase: str | None = None

    def __call__(self, progress: dict[str, Any]) -> None:
        if not self.enabled:
            return
        phase = progress.get("phase", "")
        if self.bar is None or phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(
                total=progress.get("total"),
                desc=f"{self.label} {phase}",
                unit="doc",
                file=self.out,
                dynamic_ncols=True,
                mininterval=0.2,
            )
        if progress.get("total") is not None and self.bar.total != progress["total"]:
            self.bar.total = progress["total"]
            self.bar.refresh()
        self.bar.n = progress.get("done") or 0
        if progress.get("failed"):
            self.bar.set_postfix(failed=progress["failed"], refresh=False)
        self.bar.refresh()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


class Command(DatabaseCommand):
    help = "Sync RAG knowledge sources (fetch, parse, index) or rebuild an endpoint's index."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("sources", nargs="*", help="source slugs (default: with --all)")
        parser.add_argument("--tenant", help="tenant slug (needed when a slug is ambiguous)")
        parser.add_argument("--all", action="store_true", help="every source (of --tenant)")
        parser.add_argument("--reindex", metavar="ENDPOINT", help="rebuild this endpoint")
        parser.add_argument("--progress", action="store_true", help="show progress bars")
        parser.add_argument(
            "--queue", action="store_true", help="enqueue outbox jobs instead of running here"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = self._tenant(options["tenant"])
        try:
            if options["reindex"]:
                self._reindex(tenant, options["reindex"], options)
            sources = self._sources(tenant, options["sources"], options["all"])
            if not sources and not options["reindex"]:
                raise CommandError("Name sources to sync, or pass --all (or --reindex).")
            for source in sources:
                self._sync(source, options)
        except AutomateError as exc:
            raise CommandError(f"{exc.code}: {exc.message}") from exc

    def _tenant(self, slug: str | None) -> Tenant | None:
        if slug is None:
            return None
        tenant = Tenant.objects.filter(slug=slug).first()
        if tenant is None:
            raise CommandError(f"No tenant {slug!r}.")
        return tenant

    def _sources(self, tenant: Tenant | None, slugs: list[str], every: bool) -> list[Any]:
        rows = KnowledgeSource.objects.select_related("tenant").order_by("tenant__slug", "slug")
        if tenant is not None:
            rows = rows.filter(tenant=tenant)
        if every:
            return list(rows)
        found = []
        for slug in slugs:
            matches = list(rows.filter(slug=slug))
            if not matches:
                raise CommandError(f"No source {slug!r}" + (f" in {tenant.slug}" if tenant else ""))
            if len(matches) > 1:
                tenants = ", ".join(s.tenant.slug for s in matches)
                raise CommandError(f"Source {slug!r} exists in {tenants}: pass --tenant.")
            found.append(matches[0])
        return found

    def _sync(self, source: KnowledgeSource, options: dict[str, Any]) -> None:
        label = f"{source.tenant.slug}/{source.slug}"
        if options["queue"]:
            services.queue_sync(source, actor="cli:rag_sync")
            self.stdout.write(f"{label}: queued")
            if options["progress"]:
                self._follow(source, label)
            return
        bar = _Bar(label, self.stdout, options["progress"])
        try:
            report = source.sync(progress=bar)
        finally:
            bar.close()
        summary = ", ".join(f"{k} {v}" for k, v in report.to_json().items() if k != "builds")
        self.stdout.write(f"{label}: {summary}")
        for build in report.builds:
            self.stdout.write(f"{label}: built {build}")

    def _follow(self, source: KnowledgeSource, label: str) -> None:
        bar = _Bar(label, self.stdout, True)
        try:
            while True:
                source.refresh_from_db()
                if source.sync_progress:
                    bar(source.sync_progress)
                if source.sync_status in ("succeeded", "failed"):
                    break
                time.sleep(0.5)
        finally:
            bar.close()
        self.stdout.write(f"{label}: {source.sync_status} {source.last_error}".rstrip())

    def _reindex(self, tenant: Tenant | None, slug: str, options: dict[str, Any]) -> None:
        rows = RAGEndpoint.objects.filter(slug=slug)
        if tenant is not None:
            rows = rows.filter(tenant=tenant)
        endpoints = list(rows.select_related("tenant")[:2])
        if len(endpoints) != 1:
            raise CommandError(
                f"No endpoint {slug!r}." if not endpoints else f"{slug!r} is ambiguous: --tenant."
            )
        endpoint = endpoints[0]
        label = f"{endpoint.tenant.slug}/{endpoint.slug}"
        if options["queue"]:
            version = services.queue_reindex(endpoint, actor="cli:rag_sync")
            self.stdout.write(f"{label}: build of version {version.number} queued")
            return
        bar = _Bar(label, self.stdout, options["progress"])
        try:
            version = services.reindex(endpoint, progress=bar)
        finally:
            bar.close()
        self.stdout.write(f"{label}: version {version.number} {version.status} {version.error}")
        if version.status != "live":
            raise CommandError(
                f"{label}: the build did not go live; the live version is unchanged."
            )
