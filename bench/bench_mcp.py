"""The cost of the MCP bridge, against the bare SDK, in one run on one local server.

1. A tool call through ``MCPTool.execute()`` (policy, approved-schema validation, rate limit,
   pin re-check against the tools the pooled session last listed, ``_meta``, the audit row
   queued through the outbox: one durable insert, so one commit's fsync) against a bare SDK
   client's ``call_tool`` on one open session, to the same in-process ``MCPServer`` on
   loopback. Goal: under 2 ms added at the median. Also printed: what the one durable insert
   costs on this disk (a floor for the added cost), and ``tools/list`` requests per call. The
   three are measured in alternating rounds, so a busy machine slows each of them alike.
2. Syncing a server with 1,000 tools (goal: under 2 s), then re-syncing it unchanged (goal:
   no tool, version or audit row written).

Uses the ``automate_bench`` database. Run:
``.venv/bin/python bench/bench_mcp.py [--calls N] [--rounds R]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench import bench_outbox  # noqa: F401  sets up Django on the automate_bench database

# isort: split
import anyio
from django.core.management import call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from mcp import Client

from automate_core.governance.models import AuditLog
from automate_core.outbox import store
from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import Tenant
from mcp_bridge.models import MCPServer, MCPTool, MCPToolVersion
from mcp_bridge.pool import pool
from mcp_bridge.testing import ToolServer


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def bare_call_ms(url: str, calls: int) -> list[float]:
    """Per-call milliseconds of ``call_tool`` on one open SDK session."""
    timings: list[float] = []

    async def run() -> None:
        async with Client(url) as client:
            await client.call_tool("add", {"a": 1, "b": 2})  # warm
            for i in range(calls):
                started = time.perf_counter()
                await client.call_tool("add", {"a": i, "b": 2})
                timings.append((time.perf_counter() - started) * 1000)

    anyio.run(run)
    return timings


def commit_ms(calls: int) -> list[float]:
    """Per-insert milliseconds of the outbox insert a call's audit row costs, committed alone."""
    timings: list[float] = []
    for _ in range(calls):
        started = time.perf_counter()
        store.enqueue("bench.noop", {"data": {}})
        timings.append((time.perf_counter() - started) * 1000)
    OutboxJob.objects.filter(kind="bench.noop").delete()
    return timings


def execute_ms(tool: MCPTool, calls: int) -> list[float]:
    """Per-call milliseconds of ``execute()`` (the pooled session is open already)."""
    timings: list[float] = []
    for i in range(calls):
        started = time.perf_counter()
        tool.execute({"a": i, "b": 2})
        timings.append((time.perf_counter() - started) * 1000)
    return timings


def _server_row(tenant: Tenant, slug: str, url: str) -> MCPServer:
    for old in MCPServer.objects.filter(tenant=tenant, slug=slug):
        old.delete()
    return MCPServer.objects.create(
        tenant=tenant, name=slug, slug=slug, url=url, auto_approve_new=True
    )


def bench_calls(tenant: Tenant, calls: int, rounds: int) -> None:
    server = ToolServer("bench")
    server.add(add)
    per_round = max(1, calls // rounds)
    bare_runs: list[float] = []
    ours_runs: list[float] = []
    commit_runs: list[float] = []
    with server.serving() as url:
        row = _server_row(tenant, "bench-calls", url)
        row.sync_tools()
        tool = MCPTool.objects.select_related("server__tenant", "approved_version").get(
            server=row, name="add"
        )
        tool.execute({"a": 1, "b": 2})  # warm: opens the pooled session
        listings = 0  # by execute() only: each bare session lists the tools once
        for _ in range(rounds):
            bare_runs += bare_call_ms(url, per_round)
            listed = server.server.listings
            ours_runs += execute_ms(tool, per_round)
            listings += server.server.listings - listed
            commit_runs += commit_ms(per_round)
    pool.close_all()
    bare, ours = statistics.median(bare_runs), statistics.median(ours_runs)
    commit = statistics.median(commit_runs)
    calls = len(ours_runs)
    print(f"tool call, median of {calls} ({rounds} alternating rounds):")
    print(f"  bare SDK call_tool      {bare:8.3f} ms")
    print(f"  MCPTool.execute()       {ours:8.3f} ms")
    print(f"  added                   {ours - bare:8.3f} ms   (goal < 2 ms)")
    print(f"  of which one commit     {commit:8.3f} ms   (the audit row's durable insert)")
    rest = ours - bare - commit
    print(f"  the rest                {rest:8.3f} ms   (checks, rate limit, hand-off)")
    print(f"  ratio execute/bare      {ours / bare:8.2f}x")
    print(f"  tools/list requests     {listings:8d}      (during {calls} calls)")


def bench_sync(tenant: Tenant, tools: int) -> None:
    server = ToolServer("bench-1000")
    for i in range(tools):
        server.add(add, name=f"add_{i:04d}", description=f"Add two integers ({i}).")
    with server.serving() as url:
        row = _server_row(tenant, "bench-sync", url)
        started = time.perf_counter()
        first = row.sync_tools()
        first_s = time.perf_counter() - started
        counts = (MCPTool.objects.count(), MCPToolVersion.objects.count(), AuditLog.objects.count())
        with CaptureQueriesContext(connection) as queries:
            started = time.perf_counter()
            again = row.sync_tools()
            again_s = time.perf_counter() - started
        after = (MCPTool.objects.count(), MCPToolVersion.objects.count(), AuditLog.objects.count())
    writes = [
        q["sql"].split()[0:3]
        for q in queries.captured_queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    print(f"sync of {tools} tools ({len(first.created)} created): {first_s:6.3f} s   (goal < 2 s)")
    print(f"re-sync unchanged ({len(again.created + again.updated)} changed): {again_s:6.3f} s")
    print(f"  rows written by the re-sync: {len(writes)} statement(s) {writes}")
    print(f"  tool/version/audit rows before and after: {counts} -> {after}")
    print(f"  ratio first/re-sync {first_s / again_s:6.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument(
        "--rounds",
        type=int,
        default=10,
        help="alternating rounds of bare calls, execute() calls and commits (calls split evenly)",
    )
    parser.add_argument("--tools", type=int, default=1000)
    parser.add_argument(
        "--switch-interval",
        type=float,
        default=0.0002,
        help="seconds (sys.setswitchinterval): the server shares this process, and at Python's "
        "default 5 ms every request waits on the GIL behind the other threads (a convoy), "
        "which measures thread scheduling rather than either client",
    )
    args = parser.parse_args()
    sys.setswitchinterval(args.switch_interval)
    call_command("migrate", verbosity=0)
    tenant, _ = Tenant.objects.get_or_create(slug="bench-mcp", defaults={"name": "Bench MCP"})
    with override_settings(
        AUTOMATE={"EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]},
        AUTOMATE_MCP={"CALL_RATE_LIMIT": "1000000/min", "CALL_TIMEOUT_SECONDS": 30.0},
    ):
        bench_calls(tenant, args.calls, args.rounds)
        bench_sync(tenant, args.tools)


if __name__ == "__main__":
    main()
