"""Run the keyword side of a hybrid query beside the embedding and the vector side.

The two sides are independent statements, so on its own database connection the keyword side
costs no wall time while the query is embedded and the graph walked. Only outside a
transaction: a statement on another connection would not see the caller's uncommitted rows.
When every worker is busy the call runs in the caller's thread instead, so a burst never
waits in a queue.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import ParamSpec, TypeVar

from django.db import connection

P = ParamSpec("P")
T = TypeVar("T")

#: Threads (each with its own database connection, kept like any other) per process.
WORKERS = 4

_pool = ThreadPoolExecutor(max_workers=WORKERS, thread_name_prefix="rag-beside")
_free = threading.BoundedSemaphore(WORKERS)


def start(fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> Callable[[], T]:
    """Start ``fn(*args, **kwargs)`` on a worker; return a function that waits for its result
    (or, when it could not start there, runs it)."""
    call = functools.partial(fn, *args, **kwargs)
    if connection.in_atomic_block or not _free.acquire(blocking=False):
        return call
    future = _pool.submit(_on_own_connection, call)
    future.add_done_callback(lambda _: _free.release())
    return future.result


def _on_own_connection(call: Callable[[], T]) -> T:
    # The worker's connection outlives requests: drop it when broken or older than CONN_MAX_AGE.
    connection.close_if_unusable_or_obsolete()
    return call()


def close_connections() -> None:
    """Close every worker's database connection (a test database cannot be dropped while they
    are open). Each worker takes one task, held at a barrier until all have one."""
    barrier = threading.Barrier(WORKERS)

    def close() -> None:
        barrier.wait(timeout=10)
        connection.close()

    for done in [_pool.submit(close) for _ in range(WORKERS)]:
        done.result()
