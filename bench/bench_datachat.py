"""Data chat: what the guard and the executor add, on the embedded Postgres.

1. Guard time per query of the benign corpus (tests/automate_datachat/benign.py) against a bare
   ``sqlglot.parse_one(sql, read="postgres")`` of the same text (goal: median ratio under 3x).
2. ``services.run_sql`` against running the same guarded SQL with psycopg directly on an open
   connection (goal: under 1.5 ms added at the median), with the parts of the difference: once
   as a repeated query is run (the guard's memo warm) and once with the memo cleared before
   each call (every layer of the guard runs).

Runs are interleaved (one of each per round) and medians are reported. Uses its own
``automate_bench_datachat`` database with the test suite's shop tables.
Run: ``.venv/bin/python bench/bench_datachat.py [--rounds 30]``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.database import setup_django

setup_django("automate_bench_datachat")

# ruff: noqa: E402  (Django is set up on the bench database before the project is imported)
import psycopg
import sqlglot
from django.core.management import call_command
from django.db import connection

from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import Tenant
from automate_datachat import executor, guard, services
from automate_datachat.auditing import AUDIT_JOB
from automate_datachat.role import ensure_role
from tests.automate_datachat import shop
from tests.automate_datachat.benign import BENIGN


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return (time.perf_counter() - started) * 1000


def setup() -> tuple[Tenant, object]:
    call_command("migrate", verbosity=0)
    tenant_a, _ = Tenant.objects.get_or_create(slug="bench-a", defaults={"name": "Bench A"})
    tenant_b, _ = Tenant.objects.get_or_create(slug="bench-b", defaults={"name": "Bench B"})
    with connection.cursor() as cursor:
        shop.create_and_seed(cursor, tenant_a.pk, tenant_b.pk)
    ensure_role(shop.RELATIONS)
    return tenant_a, shop.shop_dataset().bind(tenant_a.pk)


def bench_guard(dataset, rounds: int) -> None:
    ratios, parse_ms, guard_ms = [], [], []
    for sql in BENIGN:
        parses, checks = [], []
        for _ in range(rounds):
            parses.append(timed(lambda sql=sql: sqlglot.parse_one(sql, read="postgres")))
            checks.append(timed(lambda sql=sql: guard.check_uncached(sql, dataset)))
        p, c = statistics.median(parses), statistics.median(checks)
        parse_ms.append(p)
        guard_ms.append(c)
        ratios.append(c / p)
    print(f"guard over {len(BENIGN)} benign queries, {rounds} interleaved rounds each:")
    print(f"  bare parse_one      median {statistics.median(parse_ms):.3f} ms")
    print(f"  guard.check         median {statistics.median(guard_ms):.3f} ms")
    print(
        f"  ratio guard/parse   median {statistics.median(ratios):.2f}x  "
        f"(p90 {statistics.quantiles(ratios, n=10)[-1]:.2f}x, max {max(ratios):.2f}x; goal < 3x)"
    )


def bench_run_sql(tenant, dataset, rounds: int) -> None:
    direct = psycopg.connect(executor.role_conninfo(), autocommit=True)

    def run_cold(sql: str) -> None:
        guard._memoised_check.cache_clear()
        services.run_sql(tenant=tenant, dataset=dataset, sql=sql)

    names = ("direct", "run_sql", "run_sql_cold", "guard", "execute")
    parts: dict[str, list[float]] = {name: [] for name in names}
    added, added_cold = [], []
    for sql in BENIGN:
        guarded = guard.check(sql, dataset)
        text = guarded.sql.encode()
        samples: dict[str, list[float]] = {name: [] for name in names}
        for _ in range(rounds):
            samples["direct"].append(
                timed(lambda t=text: direct.execute(t, binary=True).fetchall())
            )
            samples["run_sql"].append(
                timed(lambda s=sql: services.run_sql(tenant=tenant, dataset=dataset, sql=s))
            )
            samples["run_sql_cold"].append(timed(lambda s=sql: run_cold(s)))
            samples["guard"].append(timed(lambda s=sql: guard.check_uncached(s, dataset)))
            samples["execute"].append(timed(lambda g=guarded: executor.execute(g)))
        medians = {name: statistics.median(values) for name, values in samples.items()}
        for name in names:
            parts[name].append(medians[name])
        added.append(medians["run_sql"] - medians["direct"])
        added_cold.append(medians["run_sql_cold"] - medians["direct"])
    direct.close()
    # The audit jobs were queued for a worker this benchmark does not run.
    OutboxJob.objects.filter(kind=AUDIT_JOB).delete()
    med = {name: statistics.median(values) for name, values in parts.items()}
    print(f"run_sql vs psycopg on an open connection, {rounds} interleaved rounds per query:")
    print(f"  psycopg direct      median {med['direct']:.3f} ms")
    print(f"  run_sql             median {med['run_sql']:.3f} ms  (a repeated query)")
    print(f"  run_sql, cold guard median {med['run_sql_cold']:.3f} ms  (memo cleared each call)")
    print(f"  added by run_sql    median {statistics.median(added):.3f} ms  (goal < 1.5 ms)")
    print(f"  added, cold guard   median {statistics.median(added_cold):.3f} ms")
    print(
        f"  of which: guard (every layer) {med['guard']:.3f} ms, executor (read-only "
        f"transaction) {med['execute'] - med['direct']:.3f} ms, audit job and the rest "
        f"{med['run_sql_cold'] - med['execute'] - med['guard']:.3f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=30)
    args = parser.parse_args()
    tenant, dataset = setup()
    bench_guard(dataset, args.rounds)
    bench_run_sql(tenant, dataset, max(5, args.rounds // 3))


if __name__ == "__main__":
    main()
