"""The chat widget under load, and what its endpoint adds to an answer's first token.

One uvicorn process serves the project (the real ASGI application) on loopback; answers come
from the OpenAI wire server of the test suite (``automate_llm.testing``), each streamed in
6-character pieces.

* **Concurrency**: ``--conversations`` (80) visitors at once, each from an allowed origin:
  start a conversation, ask, read the SSE answer to ``done``. Reported: wall time, every
  stream's time to first token and to ``done`` (median, p95, max: a stream blocked behind the
  others shows as a max far above the median), and the server process's threads and resident
  memory before, at the peak and after (flat after = nothing leaked).
  Django under ASGI opens a database connection per request in flight, and starting 200
  conversations at once puts 200 requests in flight: the embedded Postgres allows 100
  connections, shared with whatever else runs, so 200 needs ``DATABASE_URL`` pointing at a
  server with ``max_connections`` above 250 (or a connection pool). Streams hold no connection
  between pieces, so it is the starts, not the answers, that need them.
* **Time to first token**: ``--samples`` answers asked one at a time, alternating the widget's
  ``/widgets/v1/<pk>/conversations/<id>/messages`` and the RAG answer API
  ``/api/v1/rag/<endpoint>/answer`` (``stream: true``) on the same endpoint; the difference of
  the medians is what the widget's checks (origin, token, rate limits, quota, daily cap) and
  its stored messages add (goal: under 20 ms).
* **Bundle**: the size of ``embed.js``, raw and gzipped (budget 20 KB gzipped).

Uses its own ``automate_bench_widget`` database (on the embedded Postgres unless
``DATABASE_URL`` is set). Run: ``.venv/bin/python bench/bench_widget.py [--conversations 80]
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
from django.core.asgi import get_asgi_application
from django.core.management import call_command
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


async def converse(client: httpx.AsyncClient, base: str, key: str) -> tuple[float, float]:
    """One visitor: start, ask, read to ``done``; (first token, done) in seconds."""
    headers = {"Origin": ORIGIN}
    started = await client.post(f"{base}/widgets/v1/{key}/conversations", headers=headers)
    body = started.json()
    headers["Authorization"] = f"Bearer {body['token']}"
    url = f"{base}/widgets/v1/{key}/conversations/{body['conversation']}/messages"
    t0 = time.perf_counter()
    first = None
    async with client.stream("POST", url, json={"text": QUESTION}, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if first is None and line == "event: text":
                first = time.perf_counter() - t0
            if line == "event: done":
                break
    return (first or 0.0), time.perf_counter() - t0


async def crowd(base: str, key: str, count: int, sample: list[tuple[int, float]]) -> list[Any]:
    limits = httpx.Limits(max_connections=count, max_keepalive_connections=count)
    async with httpx.AsyncClient(timeout=120, limits=limits) as client:

        async def watch() -> None:
            while True:
                sample.append(process_stats())
                await asyncio.sleep(0.05)

        watcher = asyncio.create_task(watch())
        try:
            return await asyncio.gather(*(converse(client, base, key) for _ in range(count)))
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
    parser.add_argument("--conversations", type=int, default=80)
    parser.add_argument("--samples", type=int, default=60)
    args = parser.parse_args()

    raw = build.OUTPUT.read_bytes()
    print(f"embed.js: {len(raw) / 1024:.1f} KB, {len(gzip.compress(raw, 9)) / 1024:.1f} KB gzip")

    os.environ[f"AUTOMATE_SECRET_{WIRE_SECRET}"] = WIRE_API_KEY
    with (
        override_settings(AUTOMATE={"EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]}),
        OpenAIWire() as wire,
        serve_asgi(get_asgi_application()) as base,
    ):
        embed, endpoint, raw_key = setup(wire)
        # Every request gets this answer, streamed in 6-character pieces.
        wire.script(
            *[Reply(text=ANSWER, chunk_size=6)] * (args.conversations + 2 * args.samples + 10)
        )
        before = process_stats()
        sample: list[tuple[int, float]] = []
        t0 = time.perf_counter()
        results = asyncio.run(crowd(base, embed.publishable_key, args.conversations, sample))
        wall = time.perf_counter() - t0
        time.sleep(1)
        after = process_stats()
        firsts = [r[0] for r in results]
        dones = [r[1] for r in results]
        peak_threads = max(t for t, _ in sample) if sample else before[0]
        peak_rss = max(m for _, m in sample) if sample else before[1]
        print(
            f"{args.conversations} concurrent conversations in {wall:.2f} s; first token "
            f"median {ms(firsts):.1f} ms, p95 {ms(firsts, 0.95):.1f} ms, max "
            f"{max(firsts) * 1000:.1f} ms; done median {ms(dones):.1f} ms, max "
            f"{max(dones) * 1000:.1f} ms"
        )
        print(
            f"server threads {before[0]} before, {peak_threads} at peak, {after[0]} after; "
            f"memory {before[1]:.0f} MiB before, {peak_rss:.0f} MiB at peak, "
            f"{after[1]:.0f} MiB after"
        )
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
