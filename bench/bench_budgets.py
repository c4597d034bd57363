"""The cost of budget enforcement: reserve + settle per metered call, on the embedded Postgres.

Beside it, the floor: the same number of empty transactions (BEGIN; SELECT 1; COMMIT) issued
through Django on the same connection. The difference is what a budget check adds to each
LLM or connector call. Uses the ``automate_bench`` database of bench_outbox.py.
Run: ``.venv/bin/python bench/bench_budgets.py [--calls 2000]``.
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
from django.core.management import call_command
from django.db import connection, transaction

from automate_core.governance import budgets
from automate_core.governance.models import Budget
from automate_core.tenancy.models import Tenant


def per_call_ms(fn, calls: int) -> float:
    started = time.perf_counter()
    for i in range(calls):
        fn(i)
    return (time.perf_counter() - started) * 1000 / calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    call_command("migrate", verbosity=0)
    tenant, _ = Tenant.objects.get_or_create(slug="bench-budgets", defaults={"name": "Bench"})
    Budget.objects.filter(tenant=tenant).delete()
    scopes = [("tenant", str(tenant.pk)), ("api_key", "bench-key")]
    for scope_type, scope_id in scopes:
        Budget.objects.create(
            tenant=tenant,
            scope_type=scope_type,
            scope_id=scope_id,
            period="total",
            limit_tokens=10**15,
            limit_cost=10**9,
        )

    def metered(i: int) -> None:
        hold = budgets.reserve(
            tenant, scopes, tokens=1200, cost="0.01", ref=f"bench-{time.time_ns()}-{i}"
        )
        budgets.settle(hold, actual_tokens=900, actual_cost="0.008")

    def empty(i: int) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT 1")

    ours, floor = [], []
    for _ in range(args.rounds):
        ours.append(per_call_ms(metered, args.calls))
        floor.append(per_call_ms(empty, args.calls))
    Budget.objects.filter(tenant=tenant).delete()
    ours_ms, floor_ms = statistics.median(ours), statistics.median(floor)
    print(f"reserve+settle over 2 budgets: {ours_ms:.3f} ms per call (median of {args.rounds})")
    print(f"empty transaction floor:       {floor_ms:.3f} ms per call")
    overhead = ours_ms - floor_ms
    print(f"overhead per metered call: {overhead:.3f} ms ({ours_ms / floor_ms:.1f}x the floor)")


if __name__ == "__main__":
    main()
