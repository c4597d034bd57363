"""The chat widget under load, and what its endpoint adds to an answer's first token.

One uvicorn process serves the project (the real ASGI application) on loopback; answers come
from the OpenAI wire server of the test suite (``automate_llm.testing``), each streamed in
6-character pieces.

* **Concurrency**: ``--conversations`` (200) visitors, arriving over ``--ramp`` (6 s), each
  from an allowed origin: start a conversation, ask, read the SSE answer to ``done``. The model
  sends a piece every ``--pace`` (400 ms; 35 pieces), so an answer lasts longer than the ramp
  and every answer is open at the same time.
  Reported: wall time, the most answers open at once, every stream's time to first token and
  to ``done`` (median, p95, max: a stream blocked behind the others shows as a max far above
  the median), the server process's threads and resident memory before, at the peak and after
  (flat after = nothing leaked), and the most database connections open at once. An answer
  holds no database connection while it waits on the model (its stream reads the provider and
  its secrets first, then the request gives its connection back, before the first piece as
  between pieces), so 200 open answers fit the embedded Postgres' 100 connections: only a
  request's own work (its queries, retrieval, the budget hold) holds one. Visitors arriving
  faster than one process's CPU drains that work queue in the middle of it, each holding the
  connection its first query opened, as for any Django view (82 at once for 200 visitors over
  6 s on a busy 2-core machine, with no bound); bounding that is a connection pooler's job
  (pgbouncer, or Django's psycopg pool), not a reason to raise ``max_connections``. The bench
  plays the pooler: at most ``--admitting`` (40) visitors are between arriving and their first
  piece at once (the wait for a place is not counted in the time to first token), so it stays
  well under the Postgres it shares with other work.
* **Time to first token**: ``--samples`` answers asked one at a time, alternating the widget's
  ``/widgets/v1/<pk>/conversations/<id>/messages`` and the RAG answer API
  ``/api/v1/rag/<endpoint>/answer`` (``stream: true``) on the same endpoint; the difference of
  the medians is what the widget's checks (origin, token, rate limits, quota, daily cap) and
  its stored messages add (goal: under 20 ms).
* **Bundle**: the size of ``embed.js``, raw and gzipped (budget 20 KB gzipped).

Uses its own ``automate_bench_widget`` database (on the embedded Postgres unless
``DATABASE_URL`` is set). Run: ``.venv/bin/python bench/bench_widget.py [--conversations 200]
[--samples 60]`` (or ``python -m bench widget``).
"""

# ruff: noqa: E402  (Django is set up on the bench database before the project is imported)

from __future__ import annotations

import argparse
import asyncio
import gzip
import json
import os
import statistics
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
BENCH_DB = "automate_bench_widget"

from bench.database import setup_django

setup_django(BENCH_DB)

# isort: split
import httpx
import psycopg
from django.core.asgi import get_asgi_application
from django.core.management import call_command
from django.db import connections
from django.test import override_settings

from automate_core.tenancy.models import APIKey, Tenant
from automate_core.testing.live_server import serve_asgi
from automate_llm.models import LLMModelConfig
from automate_llm.testing import OpenAIWire, Reply
from automate_llm.testing.providers import MODELS, WIRE_API_KEY, WIRE_SECRET, create_wire_provider
from rag import services as rag
from rag.models import EmbeddingModel, KnowledgeSource, RAGEndpoint
from widgets import build
from widgets.models import ChatEmbed

ORIGIN = "https://shop.example.com"
QUESTION = "How long do refunds take?"
ANSWER = "Refunds take five business days once the returned item arrives [1]. " * 3
DOCS = {
    "refunds.md": "# Refunds\n\nCustomers are refunded within five business days once the "
    "returned item arrives.\n",
    "shipping.md": "# Shipping\n\nOrders ship from Lyon. Standard delivery takes three days.\n",
}


class PacedWire(OpenAIWire):
    """The wire server with a pause before each piece of a streamed answer: a model's pace."""

    pace = 0.0

    def answer(self, exchange: Any, request: Any, reply: Reply) -> None:
        send = exchange.event

        def paced(*args: Any, **kwargs: Any) -> None:
            time.sleep(self.pace)
            send(*args, **kwargs)

        exchange.event = paced
        super().answer(exchange, request, reply)


def setup(wire: OpenAIWire) -> tuple[ChatEmbed, str, str]:
    """A tenant with a keyword-searched endpoint over DOCS, its model on ``wire``, an embed
    with limits out of the way, and an API key for the answer API."""
    call_command("migrate", verbosity=0)
    run = uuid.uuid4().hex[:8]  # a tenant per run: earlier runs' rows stay out of the way
    tenant = Tenant.objects.create(name=f"Bench widget {run}", slug=f"bench-widget-{run}")
    source = KnowledgeSource.objects.create(tenant=tenant, name="Docs", type="api")
    for external_id, text in DOCS.items():
        rag.push_document(
            source, external_id=external_id, data=text.encode(), content_type="text/markdown"
        )
    model = EmbeddingModel.objects.create(tenant=tenant, name="MiniLM")
    endpoint = RAGEndpoint.objects.create(
        tenant=tenant,
        name="Support",
        embedding_model=model,
        retrieval_config={"mode": "keyword", "top_k": 2},
    )
    endpoint.sources.set([source])
    assert rag.reindex(endpoint).status == "live"
    provider = create_wire_provider(wire, tenant=tenant, is_default=True)
    LLMModelConfig.objects.create(
        tenant=tenant,
        provider=provider,
        name="Wire",
        slug="wire",
        model_id=MODELS["openai"],
        is_default=True,
    )
    embed = ChatEmbed.objects.create(
        tenant=tenant,
        name="Bench",
        rag_endpoint=endpoint,
        allowed_origins=[ORIGIN],
        ip_rate_limit="1000000/min",
        user_rate_limit="1000000/min",
    )
    _, raw = APIKey.issue(tenant=tenant, name="bench", scopes=[f"rag:{endpoint.slug}"])
    return embed, endpoint.slug, raw


def process_stats() -> tuple[int, float]:
    """Threads of this process (the server's) and its resident memory in MiB."""
    rss = 0.0
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            rss = int(line.split()[1]) / 1024
    return threading.active_count(), rss


class Gauge:
    """How many answers are open now, and the most that were."""

    def __init__(self) -> None:
        self.now = self.peak = 0

    def add(self, step: int) -> None:
        self.now += step
        self.peak = max(self.peak, self.now)


def database_connections() -> int:
    """Connections to the bench database open now (this one included)."""
    with psycopg.connect(os.environ["DATABASE_URL"]) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", [BENCH_DB]
        ).fetchone()
    return int(row[0]) if row else 0


async def converse(
    client: httpx.AsyncClient,
    base: str,
    key: str,
    gauge: Gauge,
    gate: asyncio.Semaphore,
    arrival: float,
) -> tuple[float, float]:
    """One visitor, ``arrival`` seconds in: start, ask, read to ``done``; (first token, done)
    in seconds. Starting and asking up to the first piece happen inside ``gate``."""
    await asyncio.sleep(arrival)
    await gate.acquire()
    admitted = True
    try:
        headers = {"Origin": ORIGIN}
        started = await client.post(f"{base}/widgets/v1/{key}/conversations", headers=headers)
        assert started.status_code == 201, started.content
        body = started.json()
        headers["Authorization"] = f"Bearer {body['token']}"
        url = f"{base}/widgets/v1/{key}/conversations/{body['conversation']}/messages"
        t0 = time.perf_counter()
        first = None
        gauge.add(1)
        try:
            async with client.stream(
                "POST", url, json={"text": QUESTION}, headers=headers
            ) as response:
                assert response.status_code == 200, await response.aread()
                async for line in response.aiter_lines():
                    if first is None and line == "event: text":
                        first = time.perf_counter() - t0
                        gate.release()
                        admitted = False
                    if line == "event: done":
                        break
        finally:
            gauge.add(-1)
    finally:
        if admitted:
            gate.release()
    return (first or 0.0), time.perf_counter() - t0


async def crowd(
    base: str,
    key: str,
    count: int,
    ramp: float,
    admitting: int,
    sample: list[tuple[int, float, int]],
    gauge: Gauge,
) -> list[Any]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def watch() -> None:
            while True:
                threads, rss = process_stats()
                databases = await asyncio.to_thread(database_connections)
                sample.append((threads, rss, databases))
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        try:
            gate = asyncio.Semaphore(admitting)
            visitors = (
                converse(client, base, key, gauge, gate, i * ramp / count) for i in range(count)
            )
            return await asyncio.gather(*visitors)
        finally:
            watcher.cancel()


def first_token(client: httpx.Client, url: str, body: dict[str, Any], headers: dict[str, str]):
    t0 = time.perf_counter()
    with client.stream("POST", url, json=body, headers=headers) as response:
        assert response.status_code == 200, response.read()
        elapsed = 0.0
        for line in response.iter_lines():
            if not elapsed and line == "event: text":
                elapsed = time.perf_counter() - t0
    return elapsed


def ttft(base: str, embed: ChatEmbed, endpoint: str, raw_key: str, samples: int):
    widget_times, api_times = [], []
    with httpx.Client(timeout=60) as client:
        origin = {"Origin": ORIGIN}
        for i in range(samples + 5):
            started = client.post(
                f"{base}/widgets/v1/{embed.publishable_key}/conversations", headers=origin
            ).json()
            widget = (
                f"{base}/widgets/v1/{embed.publishable_key}/conversations/"
                f"{started['conversation']}/messages",
                {"text": QUESTION},
                {**origin, "Authorization": f"Bearer {started['token']}"},
            )
            api = (
                f"{base}/api/v1/rag/{endpoint}/answer",
                {"query": QUESTION, "stream": True},
                {"Authorization": f"Bearer {raw_key}"},
            )
            order = [("widget", widget), ("api", api)]
            for name, (url, body, headers) in order if i % 2 else order[::-1]:
                elapsed = first_token(client, url, body, headers)
                if i >= 5:  # warm-up
                    (widget_times if name == "widget" else api_times).append(elapsed)
    return widget_times, api_times


def ms(values: list[float], q: float | None = None) -> float:
    if q is None:
        return statistics.median(values) * 1000
    return sorted(values)[min(len(values) - 1, int(q * len(values)))] * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--conversations", type=int, default=200)
    parser.add_argument("--samples", type=int, default=60)
    parser.add_argument("--ramp", type=float, default=6.0)
    parser.add_argument("--pace", type=float, default=0.4)
    parser.add_argument("--admitting", type=int, default=40)
    args = parser.parse_args()

    raw = build.OUTPUT.read_bytes()
    print(f"embed.js: {len(raw) / 1024:.1f} KB, {len(gzip.compress(raw, 9)) / 1024:.1f} KB gzip")

    os.environ[f"AUTOMATE_SECRET_{WIRE_SECRET}"] = WIRE_API_KEY
    # As under any ASGI server: a request's connection is closed when it ends (a persistent
    # one would stay with a request thread that is gone).
    connections.settings["default"]["CONN_MAX_AGE"] = 0
    with (
        override_settings(AUTOMATE={"EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]}),
        PacedWire() as wire,
        serve_asgi(get_asgi_application()) as base,
    ):
        embed, endpoint, raw_key = setup(wire)
        # Every request gets this answer, streamed in 6-character pieces, at the model's pace
        # for the crowd, at once for the first-token samples.
        wire.script(
            *[Reply(text=ANSWER, chunk_size=6)] * (args.conversations + 2 * args.samples + 10)
        )
        wire.pace = args.pace
        before = process_stats()
        sample: list[tuple[int, float, int]] = []
        gauge = Gauge()
        t0 = time.perf_counter()
        results = asyncio.run(
            crowd(
                base,
                embed.publishable_key,
                args.conversations,
                args.ramp,
                args.admitting,
                sample,
                gauge,
            )
        )
        wall = time.perf_counter() - t0
        time.sleep(1)
        after = process_stats()
        firsts = [r[0] for r in results]
        dones = [r[1] for r in results]
        peak_threads = max(t for t, _, _ in sample) if sample else before[0]
        peak_rss = max(m for _, m, _ in sample) if sample else before[1]
        peak_databases = max(d for _, _, d in sample) if sample else 0
        print(
            f"{args.conversations} concurrent conversations in {wall:.2f} s, {gauge.peak} "
            f"answers open at once (a piece every {args.pace * 1000:.0f} ms); first token "
            f"median {ms(firsts):.1f} ms, p95 {ms(firsts, 0.95):.1f} ms, max "
            f"{max(firsts) * 1000:.1f} ms; done median {ms(dones):.1f} ms, max "
            f"{max(dones) * 1000:.1f} ms"
        )
        print(
            f"server threads {before[0]} before, {peak_threads} at peak, {after[0]} after; "
            f"memory {before[1]:.0f} MiB before, {peak_rss:.0f} MiB at peak, "
            f"{after[1]:.0f} MiB after; at most {peak_databases} database connections"
        )
        wire.pace = 0.0
        widget_times, api_times = ttft(base, embed, endpoint, raw_key, args.samples)
        added = ms(widget_times) - ms(api_times)
        print(
            f"time to first token over {args.samples} answers: widget {ms(widget_times):.1f} ms, "
            f"RAG answer API {ms(api_times):.1f} ms (median); the widget adds {added:.1f} ms "
            f"(goal < 20 ms)"
        )
        print(json.dumps({"wire_requests": len(wire.requests)}))


if __name__ == "__main__":
    main()
