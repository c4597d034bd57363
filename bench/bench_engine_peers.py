"""Our engine beside DBOS Transact, procrastinate and a pgbench claim ceiling, in one run.

The workload everywhere: one "run" is a 3-step no-op workflow, started and driven to completion on
the embedded Postgres (the same server, one database each). Each system is measured in its own
child process, one after the other, so that no system's threads or pools run during another's;
``--rounds`` (3) repeats the whole sequence, systems interleaved, and reports each figure's median:

* ``ours``: ``bench/bench_engine.py``'s own functions. ``throughput(N)``: N events ingested, then a
  default ``Worker(once=True)`` (4 threads, batch 10) drains them: completed runs/s.
  ``latency(L)``: L events ingested 20 ms apart into a listening worker; ingest -> completed
  p50/p99.
* ``dbos``: DBOS Transact, a ``@DBOS.workflow()`` calling three no-op ``@DBOS.step()``s, with its
  system database ``dbos_bench`` (dropped and recreated each run).
  - sequential, the method of the issue: call the workflow M times in a loop (then once more with
    ``DBOS.start_workflow(...).get_result()``); runs/s = M / elapsed, p50/p99 of each call.
  - queue: N workflows enqueued on a queue (``worker_concurrency`` = ``--concurrency``) while this
    process listens to no queue, then DBOS relaunched listening to it: runs/s from launch to the
    last SUCCESS. Latency: L enqueued 20 ms apart; ``completed_at - created_at`` p50/p99.
    DBOS queues poll (no LISTEN/NOTIFY); ``--dbos-poll`` sets the interval (DBOS's default: 1 s).
* ``procrastinate``: three async no-op tasks, each deferring the next (procrastinate has no
  chain primitive), database ``procrastinate_bench`` (recreated each run); a worker with
  ``concurrency`` = ``--concurrency`` and LISTEN/NOTIFY. Drain: N chains deferred, then the worker
  started: chains/s until the N-th third task finished. Latency: L chains deferred 20 ms apart;
  first task's ``deferred`` event -> third task's ``succeeded`` event, p50/p99.
* ``pgbench``: Postgres 16's pgbench (shipped in pgserver) running the bare claim transaction,
  ``SELECT id ... ORDER BY available_at LIMIT 1 FOR UPDATE SKIP LOCKED`` then ``UPDATE ... SET
  status = 'done'``, on a copy of the outbox table (``CREATE TABLE ... (LIKE automate_core_outboxjob
  INCLUDING ALL)`` in ``automate_bench``), ``--pgbench-clients`` clients for ``--pgbench-seconds``.
  Its runs/s column is tx/s divided by the outbox jobs one of our runs takes (measured by the
  ``ours`` phase: 2, the event's job and one step job for the 3 chained steps).

Ratios are ours / theirs: above 1 in the runs/s column means we complete more runs per second;
below 1 in the p50 column means our median latency is lower.

Run: ``.venv/bin/python bench/bench_engine_peers.py [--runs 1000] [--seq 500] [--concurrency 4]``
(needs the ``bench`` extra for dbos and procrastinate; a missing one is reported and skipped).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.metadata
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

DBOS_DB = "dbos_bench"
PROCRASTINATE_DB = "procrastinate_bench"
CLAIM_TABLE = "bench_peers_claim"
PACE_S = 0.02  # latency runs are started 20 ms apart, as bench_engine.latency() does
ISSUE_DBOS = (66.0, 14.6)  # the issue's figure: DBOS 3.4 sequential, runs/s and p50 ms
RESULT_TAG = "BENCH_PEERS_RESULT "


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def percentiles(millis: list[float]) -> tuple[float, float]:
    """p50 and p99 as bench_engine.latency() takes them."""
    values = sorted(millis)
    return statistics.median(values), values[max(0, int(len(values) * 0.99) - 1)]


def base_url() -> str:
    """The server bench_outbox.py uses: ``DATABASE_URL`` or the embedded Postgres."""
    url = os.environ.get("AUTOMATE_BENCH_BASE_URL") or os.environ.get("DATABASE_URL")
    if url:
        return url
    from automate_site import embedded

    var_dir = Path(os.environ.get("AUTOMATE_VAR_DIR", REPO_ROOT / "var")).resolve()
    return embedded.postgres_url(var_dir)


def database_url(name: str) -> str:
    return urlsplit(base_url())._replace(path="/" + name).geturl()


def recreate_database(name: str) -> str:
    import psycopg

    with psycopg.connect(base_url(), autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return database_url(name)


def version(package: str) -> str | None:
    try:
        return importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- ours ---------------------------------------------------------------------------------------


def phase_ours(args: argparse.Namespace) -> dict:
    sys.argv = sys.argv[:1]  # bench_engine parses nothing on import, but keep argv clean
    from django.core.management import call_command

    from bench import bench_engine  # sets up Django on automate_bench

    call_command("migrate", verbosity=0)
    bench_engine.throughput(min(200, args.runs))  # warm-up: connections, caches, first pages
    rate = bench_engine.throughput(args.runs)
    jobs_per_run = bench_engine.jobs_per_run()
    log(f"  ours: drain {args.runs} runs: {rate:.1f} runs/s ({jobs_per_run:g} jobs/run)")
    p50, p99 = bench_engine.latency(args.latency_runs)
    log(f"  ours: latency {args.latency_runs} runs 20 ms apart: p50 {p50:.1f} ms, p99 {p99:.1f} ms")
    bench_engine.reset()
    return {
        "drain_runs_s": rate,
        "jobs_per_run": jobs_per_run,
        "latency_p50_ms": p50,
        "latency_p99_ms": p99,
        "django": version("django"),
    }


# --- DBOS Transact ------------------------------------------------------------------------------


def phase_dbos(args: argparse.Namespace) -> dict:
    import logging

    import psycopg
    from dbos import DBOS

    url = recreate_database(DBOS_DB)
    config = {"name": "bench-peers", "system_database_url": url, "log_level": "WARNING"}

    @DBOS.step()
    def one() -> None:
        return None

    @DBOS.step()
    def two() -> None:
        return None

    @DBOS.step()
    def three() -> None:
        return None

    @DBOS.workflow()
    def three_steps() -> None:
        one()
        two()
        three()

    def count(conn: psycopg.Connection, status: str) -> int:
        return conn.execute(
            "SELECT count(*) FROM dbos.workflow_status WHERE queue_name = 'bench' AND status = %s",
            [status],
        ).fetchone()[0]

    result: dict = {"dbos": version("dbos"), "sqlalchemy": version("sqlalchemy")}

    def launch(listen: bool) -> None:
        """Start DBOS; with ``listen=False`` it dequeues nothing from our queue."""
        DBOS(config=config)
        if not listen:
            DBOS.listen_queues([])
        DBOS.launch()
        logging.getLogger("dbos").setLevel(logging.WARNING)

    # The queue must be registered (which needs a launched DBOS) before the backlog is enqueued;
    # this first instance listens to none of our queues, so the backlog waits for the second.
    launch(listen=False)
    for _ in range(50):  # warm-up
        three_steps()

    def sequential(call, label: str) -> tuple[float, float, float]:
        millis = []
        started = time.perf_counter()
        for _ in range(args.seq):
            t = time.perf_counter()
            call()
            millis.append((time.perf_counter() - t) * 1000)
        rate = args.seq / (time.perf_counter() - started)
        p50, p99 = percentiles(millis)
        log(
            f"  dbos: sequential {label} x{args.seq}: {rate:.1f} runs/s, p50 {p50:.2f} ms, "
            f"p99 {p99:.2f} ms"
        )
        return rate, p50, p99

    result["seq_call"] = sequential(three_steps, "workflow call")
    result["seq_start"] = sequential(
        lambda: DBOS.start_workflow(three_steps).get_result(), "start_workflow+get_result"
    )

    queue = DBOS.register_queue(
        "bench",
        worker_concurrency=args.concurrency,
        polling_interval_sec=args.dbos_poll,
        on_conflict="always_update",
    )
    with psycopg.connect(url, autocommit=True) as conn:
        for _ in range(args.runs):
            queue.enqueue(three_steps)  # nothing dequeues them yet
        assert count(conn, "ENQUEUED") == args.runs
        DBOS.destroy(destroy_registry=False)
        started = time.perf_counter()
        launch(listen=True)  # this instance listens to every queue: the backlog starts now
        while count(conn, "SUCCESS") < args.runs:
            time.sleep(0.01)
        drain = args.runs / (time.perf_counter() - started)
        log(
            f"  dbos: queue drain {args.runs} runs, concurrency {args.concurrency}, poll "
            f"{args.dbos_poll * 1000:g} ms: {drain:.1f} runs/s"
        )

        conn.execute("DELETE FROM dbos.workflow_status WHERE queue_name = 'bench'")
        handles = []
        for _ in range(args.latency_runs):
            handles.append(queue.enqueue(three_steps))
            time.sleep(PACE_S)
        for handle in handles:
            handle.get_result()
        rows = conn.execute(
            "SELECT completed_at - created_at FROM dbos.workflow_status "
            "WHERE queue_name = 'bench' AND status = 'SUCCESS'"
        ).fetchall()
    assert len(rows) == args.latency_runs, len(rows)
    p50, p99 = percentiles([float(r[0]) for r in rows])
    log(
        f"  dbos: queue latency {args.latency_runs} runs 20 ms apart: p50 {p50:.1f} ms, "
        f"p99 {p99:.1f} ms"
    )
    DBOS.destroy()
    result.update(
        queue_drain_runs_s=drain,
        queue_p50_ms=p50,
        queue_p99_ms=p99,
    )
    return result


# --- procrastinate ------------------------------------------------------------------------------


def phase_procrastinate(args: argparse.Namespace) -> dict:
    import logging

    import procrastinate

    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    url = recreate_database(PROCRASTINATE_DB)
    app = procrastinate.App(
        connector=procrastinate.PsycopgConnector(
            conninfo=url, min_size=2, max_size=args.concurrency + 4
        )
    )
    state: dict = {"done": 0, "target": 0, "event": None}

    @app.task(name="bench_one")
    async def one(chain: int) -> None:
        await two.defer_async(chain=chain)

    @app.task(name="bench_two")
    async def two(chain: int) -> None:
        await three.defer_async(chain=chain)

    @app.task(name="bench_three")
    async def three(chain: int) -> None:
        state["done"] += 1
        if state["done"] >= state["target"]:
            state["event"].set()

    async def truncate() -> None:
        await app.connector.execute_query_async(
            "TRUNCATE procrastinate_events, procrastinate_jobs, procrastinate_periodic_defers "
            "CASCADE"
        )

    def expect(count: int) -> None:
        state.update(done=0, target=count, event=asyncio.Event())

    def start_worker() -> asyncio.Task:
        return asyncio.create_task(
            app.run_worker_async(
                concurrency=args.concurrency, wait=True, install_signal_handlers=False
            )
        )

    async def stop(worker: asyncio.Task) -> None:
        worker.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await worker

    async def drain(count: int) -> float:
        await truncate()
        for chain in range(count):
            await one.defer_async(chain=chain)
        expect(count)
        started = time.perf_counter()
        worker = start_worker()
        await asyncio.wait_for(state["event"].wait(), 300)
        rate = count / (time.perf_counter() - started)
        await stop(worker)
        return rate

    async def latency(count: int) -> tuple[float, float]:
        await truncate()
        expect(count)
        worker = start_worker()
        await asyncio.sleep(0.5)  # the worker is listening
        for chain in range(count):
            await one.defer_async(chain=chain)
            await asyncio.sleep(PACE_S)
        await asyncio.wait_for(state["event"].wait(), 120)
        await stop(worker)
        rows = await app.connector.execute_query_all_async(
            "SELECT extract(epoch FROM done.at - deferred.at) * 1000 AS ms "
            "FROM procrastinate_jobs first "
            "JOIN procrastinate_events deferred "
            "  ON deferred.job_id = first.id AND deferred.type = 'deferred' "
            "JOIN procrastinate_jobs last ON last.task_name = 'bench_three' "
            "  AND last.args->'chain' = first.args->'chain' "
            "JOIN procrastinate_events done ON done.job_id = last.id AND done.type = 'succeeded' "
            "WHERE first.task_name = 'bench_one'"
        )
        assert len(rows) == count, len(rows)
        return percentiles([float(row["ms"]) for row in rows])

    async def main() -> dict:
        async with app.open_async():
            await app.schema_manager.apply_schema_async()
            await drain(min(200, args.runs))  # warm-up
            rate = await drain(args.runs)
            log(
                f"  procrastinate: drain {args.runs} chains, concurrency {args.concurrency}: "
                f"{rate:.1f} runs/s"
            )
            p50, p99 = await latency(args.latency_runs)
            log(
                f"  procrastinate: latency {args.latency_runs} chains 20 ms apart: "
                f"p50 {p50:.1f} ms, p99 {p99:.1f} ms"
            )
            await truncate()
        return {
            "procrastinate": version("procrastinate"),
            "drain_runs_s": rate,
            "latency_p50_ms": p50,
            "latency_p99_ms": p99,
        }

    return asyncio.run(main())


# --- pgbench ------------------------------------------------------------------------------------


def pgbench_binary(explicit: str | None) -> str | None:
    if explicit:
        return explicit
    with contextlib.suppress(ImportError):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import pgserver
        bundled = Path(pgserver.__file__).parent / "pginstall" / "bin" / "pgbench"
        if bundled.exists():
            return str(bundled)
    return shutil.which("pgbench")


CLAIM_SCRIPT = f"""\
BEGIN;
SELECT id FROM {CLAIM_TABLE}
  WHERE status IN ('queued', 'failed') AND available_at <= statement_timestamp()
  ORDER BY available_at LIMIT 1 FOR UPDATE SKIP LOCKED \\gset
UPDATE {CLAIM_TABLE} SET status = 'done', finished_at = now() WHERE id = :id;
END;
"""


def phase_pgbench(args: argparse.Namespace) -> dict:
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    binary = pgbench_binary(args.pgbench)
    if not binary:
        raise RuntimeError("no pgbench: pass --pgbench PATH (pgserver ships one)")
    url = database_url("automate_bench")
    rows = 30_000 * args.pgbench_seconds  # more than 4 clients claim in that time on 2 cores
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CLAIM_TABLE}")
        conn.execute(f"CREATE TABLE {CLAIM_TABLE} (LIKE automate_core_outboxjob INCLUDING ALL)")
        conn.execute(
            f"INSERT INTO {CLAIM_TABLE} (id, created_at, updated_at, kind, payload, status, "
            "attempts, max_attempts, available_at, lease_owner, fencing_token, last_error, "
            "trace_id) SELECT gen_random_uuid(), now(), now(), 'bench.raw', '{}', 'queued', 0, "
            "10, now(), '', 0, '', '' FROM generate_series(1, %s)",
            [rows],
        )
        conn.execute(f"VACUUM ANALYZE {CLAIM_TABLE}")
    info = conninfo_to_dict(url)
    env = dict(os.environ)
    for key, var in [("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"),
                     ("password", "PGPASSWORD"), ("dbname", "PGDATABASE")]:  # fmt: skip
        if info.get(key):
            env[var] = str(info[key])
    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "claim.sql"
        script.write_text(CLAIM_SCRIPT)
        threads = min(args.pgbench_clients, os.cpu_count() or 1)
        command = [
            binary, "-n", "-M", "prepared", "-f", str(script),
            "-c", str(args.pgbench_clients), "-j", str(threads),
            "-T", str(args.pgbench_seconds), "-l", "--log-prefix", str(Path(tmp) / "tx"),
        ]  # fmt: skip
        done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise RuntimeError(f"pgbench failed ({done.returncode}):\n{done.stdout}{done.stderr}")
        tps = next(
            float(line.split("=")[1].split()[0])
            for line in done.stdout.splitlines()
            if line.startswith("tps =")
        )
        millis = [
            int(line.split()[2]) / 1000
            for log_file in Path(tmp).glob("tx.*")
            for line in log_file.read_text().splitlines()
        ]
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {CLAIM_TABLE}")
    p50, p99 = percentiles(millis)
    log(
        f"  pgbench: claim tx, {args.pgbench_clients} clients, {args.pgbench_seconds} s: "
        f"{tps:.0f} tx/s, p50 {p50:.2f} ms, p99 {p99:.2f} ms ({len(millis)} tx)"
    )
    return {"tps": tps, "p50_ms": p50, "p99_ms": p99, "transactions": len(millis),
            "binary": binary}  # fmt: skip


PHASES = {
    "ours": (phase_ours, None),
    "dbos": (phase_dbos, "dbos"),
    "procrastinate": (phase_procrastinate, "procrastinate"),
    "pgbench": (phase_pgbench, None),
}


# --- orchestration ------------------------------------------------------------------------------


def run_phase(name: str, argv: list[str]) -> dict | str:
    """Run one phase in a child process; its result dict, or why there is none."""
    package = PHASES[name][1]
    if package and version(package) is None:
        return "skipped: not installed (pip install -e '.[bench]')"
    child = subprocess.run(
        [sys.executable, __file__, *argv, "--phase", name],
        stdout=subprocess.PIPE,
        text=True,
        check=False,
    )
    for line in child.stdout.splitlines():
        if line.startswith(RESULT_TAG):
            return json.loads(line[len(RESULT_TAG) :])
    return f"failed (exit {child.returncode}; see its output above)"


def merge(outcomes: list[dict | str]) -> dict | str:
    """One result per system: each figure's median over the rounds, the rounds kept beside."""
    done = [o for o in outcomes if isinstance(o, dict)]
    if len(done) < len(outcomes):
        return next(o for o in outcomes if isinstance(o, str))
    merged: dict = {}
    for key, first in done[0].items():
        if isinstance(first, int | float):
            merged[key] = statistics.median(o[key] for o in done)
        elif isinstance(first, list | tuple):
            merged[key] = [statistics.median(o[key][i] for o in done) for i in range(len(first))]
        else:
            merged[key] = first
    merged["rounds"] = done
    return merged


def other_activity() -> list[str]:
    """Other clients of the server and the load average: anything that skews the figures."""
    import psycopg

    notes = []
    with psycopg.connect(base_url(), autocommit=True) as conn:
        rows = conn.execute(
            "SELECT datname, count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' "
            "AND pid <> pg_backend_pid() GROUP BY 1"
        ).fetchall()
        version_row = conn.execute("SHOW server_version").fetchone()
        settings = conn.execute(
            "SELECT name, current_setting(name) FROM pg_settings WHERE name IN "
            "('fsync', 'synchronous_commit', 'shared_buffers', 'max_connections')"
        ).fetchall()
    if rows:
        notes.append("other clients on the server: " + ", ".join(f"{d}: {n}" for d, n in rows))
    busy = cpu_busy()
    if busy is not None and busy > 0.15:
        notes.append(f"WARNING: CPUs {busy:.0%} busy before the run (figures will be low)")
    return [f"Postgres {version_row[0]} ({', '.join(f'{k}={v}' for k, v in settings)})", *notes]


def cpu_busy(seconds: float = 1.0) -> float | None:
    """Share of CPU time not idle over ``seconds`` (Linux), to flag a machine that is not quiet."""

    def sample() -> tuple[int, int]:
        fields = [int(f) for f in Path("/proc/stat").read_text().split("\n")[0].split()[1:]]
        return sum(fields), fields[3] + fields[4]  # total, idle + iowait

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    return 1 - (idle1 - idle0) / max(1, total1 - total0)


def fmt(value: float | None, digits: int = 1) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def report(results: dict, args: argparse.Namespace) -> list[list[str]]:
    ours = results.get("ours")
    ours_rate = ours["drain_runs_s"] if isinstance(ours, dict) else None
    ours_p50 = ours["latency_p50_ms"] if isinstance(ours, dict) else None
    c = args.concurrency
    rows: list[tuple[str, str, float | None, float | None, float | None]] = []
    if isinstance(ours, dict):
        rows.append(
            (
                "ours (django-automate)",
                "drain, Worker 4 thr/batch 10; latency 20 ms pace",
                ours_rate,
                ours_p50,
                ours["latency_p99_ms"],
            )
        )
    dbos = results.get("dbos")
    if isinstance(dbos, dict):
        rate, p50, p99 = dbos["seq_call"]
        rows.append((f"DBOS {dbos['dbos']}", "sequential, workflow call", rate, p50, p99))
        rate, p50, p99 = dbos["seq_start"]
        rows.append((f"DBOS {dbos['dbos']}", "sequential, start_workflow", rate, p50, p99))
        rows.append(
            (
                f"DBOS {dbos['dbos']}",
                f"queue c={c} poll {args.dbos_poll * 1000:g} ms; latency 20 ms pace",
                dbos["queue_drain_runs_s"],
                dbos["queue_p50_ms"],
                dbos["queue_p99_ms"],
            )
        )
    pro = results.get("procrastinate")
    if isinstance(pro, dict):
        rows.append(
            (
                f"procrastinate {pro['procrastinate']}",
                f"drain c={c}, 3 chained tasks; latency 20 ms pace",
                pro["drain_runs_s"],
                pro["latency_p50_ms"],
                pro["latency_p99_ms"],
            )
        )
    pgb = results.get("pgbench")
    if isinstance(pgb, dict):
        per_run = ours.get("jobs_per_run", 2) if isinstance(ours, dict) else 2
        rows.append(
            (
                "pgbench claim tx",
                f"{pgb['tps']:,.0f} tx/s, {args.pgbench_clients} clients; /{per_run:g} jobs/run",
                pgb["tps"] / per_run,
                pgb["p50_ms"],
                pgb["p99_ms"],
            )
        )
    table = [["system", "method", "runs/s", "p50 ms", "p99 ms", "ours/theirs runs/s",
              "ours/theirs p50"]]  # fmt: skip
    for system, method, rate, p50, p99 in rows:
        is_ours = system.startswith("ours")
        table.append([
            system, method, fmt(rate), fmt(p50, 2), fmt(p99, 2),
            "1.00" if is_ours else (fmt(ours_rate / rate, 2) if ours_rate and rate else "-"),
            "1.00" if is_ours else (fmt(ours_p50 / p50, 2) if ours_p50 and p50 else "-"),
        ])  # fmt: skip
    for name, value in results.items():
        if isinstance(value, str):
            table.append([name, value, "-", "-", "-", "-", "-"])
    return table


def print_table(table: list[list[str]]) -> None:
    widths = [max(len(row[i]) for row in table) for i in range(len(table[0]))]
    for n, row in enumerate(table):
        print(
            "  ".join(
                cell.ljust(w) if i < 2 else cell.rjust(w)
                for i, (cell, w) in enumerate(zip(row, widths, strict=True))
            )
        )
        if n == 0:
            print("  ".join("-" * w for w in widths))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=1000, help="runs per drain (backlog)")
    parser.add_argument("--seq", type=int, default=500, help="DBOS sequential calls")
    parser.add_argument("--latency-runs", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=4, help="peers' worker concurrency")
    parser.add_argument("--rounds", type=int, default=3, help="rounds, interleaved (median)")
    parser.add_argument("--dbos-poll", type=float, default=0.01, help="DBOS queue poll, seconds")
    parser.add_argument("--pgbench", help="pgbench binary (default: pgserver's)")
    parser.add_argument("--pgbench-seconds", type=int, default=10)
    parser.add_argument("--pgbench-clients", type=int, default=4)
    parser.add_argument("--only", nargs="*", choices=sorted(PHASES), help="systems to run")
    parser.add_argument("--json", help="also write the results to this file")
    parser.add_argument("--phase", choices=sorted(PHASES), help=argparse.SUPPRESS)
    args, _ = parser.parse_known_args()  # `python -m bench` may pass filter words

    if args.phase:
        print(RESULT_TAG + json.dumps(PHASES[args.phase][0](args)), flush=True)
        return 0

    os.environ["AUTOMATE_BENCH_BASE_URL"] = base_url()  # children reuse the running server
    header = [
        f"{platform.node()}: {os.cpu_count()} CPUs, {platform.processor() or platform.machine()}, "
        f"Python {platform.python_version()}",
        *other_activity(),
        f"runs per drain {args.runs}, latency runs {args.latency_runs} at 20 ms, peers' "
        f"concurrency {args.concurrency}, rounds {args.rounds}",
    ]
    for line in header:
        log(line)
    argv = [a for a in sys.argv[1:] if not a.startswith("--only") and a not in PHASES]
    started = time.perf_counter()
    rounds: dict[str, list[dict | str]] = {name: [] for name in (args.only or PHASES)}
    for n in range(args.rounds):  # systems interleaved, so drifting load hits them alike
        for name in rounds:
            if n and isinstance(rounds[name][-1], str):
                continue  # failed or skipped: do not retry
            busy = cpu_busy(0.5)
            note = f", WARNING: CPUs {busy:.0%} busy before it" if busy and busy > 0.15 else ""
            log(f"[{name}, round {n + 1}/{args.rounds}{note}]")
            phase_started = time.perf_counter()
            outcome = run_phase(name, argv)
            if isinstance(outcome, dict):
                outcome.update(cpu_busy_before=busy, seconds=time.perf_counter() - phase_started)
                log(f"  ({outcome['seconds']:.0f} s)")
            rounds[name].append(outcome)
    results = {name: merge(outcomes) for name, outcomes in rounds.items()}
    elapsed = time.perf_counter() - started

    print()
    print(" | ".join(header))
    print_table(report(results, args))
    dbos = results.get("dbos")
    if isinstance(dbos, dict):
        rate, p50, _ = dbos["seq_call"]
        print(
            f"issue's DBOS 3.4 sequential figure: {ISSUE_DBOS[0]:.0f} runs/s, p50 "
            f"{ISSUE_DBOS[1]} ms; measured here: {rate:.0f} runs/s, p50 {p50:.1f} ms"
        )
    print(f"(took {elapsed:.0f} s)")
    if args.json:
        Path(args.json).write_text(json.dumps({"header": header, "results": results}, indent=2))
    failed = [n for n, v in results.items() if isinstance(v, str) and not v.startswith("skipped")]
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
