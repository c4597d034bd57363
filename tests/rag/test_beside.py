"""The keyword side beside the vector side: on a worker's own connection outside a
transaction, in the caller's thread inside one or when every worker is busy."""

from __future__ import annotations

import threading

import pytest
from django.db import connection

from rag import beside, services

from .factories import handbook


def _where() -> tuple[str, int]:
    """The thread a call ran in and its database backend's pid."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        (pid,) = cursor.fetchone()
    return threading.current_thread().name, pid


def _my_pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


@pytest.mark.django_db(transaction=True)
def test_outside_a_transaction_it_runs_on_a_worker_with_its_own_connection():
    thread, pid = beside.start(_where)()
    assert thread.startswith("rag-beside") and pid != _my_pid()


@pytest.mark.django_db
def test_inside_a_transaction_it_runs_in_the_callers_thread():
    # A worker's connection would not see this test's uncommitted rows.
    assert beside.start(_where)() == (threading.current_thread().name, _my_pid())


@pytest.mark.django_db(transaction=True)
def test_when_every_worker_is_busy_it_runs_in_the_callers_thread():
    release = threading.Event()
    busy = [beside.start(release.wait, 10) for _ in range(beside.WORKERS)]
    try:
        assert beside.start(threading.current_thread)() is threading.current_thread()
    finally:
        release.set()
        for wait in busy:
            wait()
    assert beside.start(threading.current_thread)() is not threading.current_thread()


@pytest.mark.django_db(transaction=True)
def test_a_hybrid_query_outside_a_transaction_finds_what_it_finds_inline(tenant):
    endpoint = handbook(tenant)
    endpoint.retrieval_config = {"mode": "hybrid", "highlights": False}
    beside_result = services.query(endpoint, "refund policy", top_k=3)

    def inline(fn, *args, **kwargs):
        result = fn(*args, **kwargs)
        return lambda: result

    original, beside.start = beside.start, inline
    try:
        inline_result = services.query(endpoint, "refund policy", top_k=3)
    finally:
        beside.start = original
    assert [r.chunk_id for r in beside_result.results] == [
        r.chunk_id for r in inline_result.results
    ]
    assert beside_result.strategy["keyword"] == "bm25" and beside_result.results
