"""What the LLM gateway adds to a model call, beside the bare official SDK calling the same server.

The OpenAI and Anthropic wire servers of the test suite (``automate_llm.testing``: real HTTP
servers on 127.0.0.1 speaking each API, JSON and SSE) answer every variant alike, so the
differences are our code. Per provider, interleaved call by call (the order rotates each
round, so drift and warm-up hit every variant alike), each call timed on its own:

* ``sdk``: ``openai.OpenAI(...).chat.completions.create`` / ``anthropic.Anthropic(...).messages
  .create`` with ``max_retries=0`` and a plain ``httpx2.Client``: the floor.
* ``gateway``: :meth:`automate_llm.gateway.Gateway.chat` on one target: the provider plugin
  (secrets resolved, SDK client built, request and answer translated), the egress-guarded
  transport, the retry loop. No database.
* ``services``: :func:`automate_llm.services.chat`, what apps and the API call: the tenant's
  providers and model configs read in one query, tokens estimated, the budget lookup, and the
  call's record queued as one outbox job; with no budget, and with two budgets (the tenant's
  and the API key's) held before the call and settled with the job. Each variant's SQL
  statements per call are counted too.
* records: the ``llm.record`` jobs those calls queued, run afterwards in this process by the
  outbox runner (``LLMRequest`` + ``LLMUsage`` + hash-chained audit row per job), timed per
  job: the work a worker does for each call, off the caller's path.
* streams: answers of 1 and of ``--chunks`` one-character chunks through the SDK, the
  gateway's stream and ``services.stream_chat``. A variant's cost per chunk is the difference
  between the two over the extra chunks (what every call costs once cancels out); minus the
  SDK's, it is the overhead the gateway adds per streamed chunk.

Uses its own ``automate_bench_llm`` database (on the embedded Postgres unless ``DATABASE_URL``
is set), so no other benchmark's worker runs its jobs or it theirs. Run:
``.venv/bin/python bench/bench_llm_gateway.py [--calls 400] [--stream-runs 40] [--chunks 400]
[--only openai]`` (or ``python -m bench llm_gateway``).
"""

# ruff: noqa: E402  (Django is set up on the bench database before the project is imported)

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
BENCH_DB = "automate_bench_llm"


from bench.database import setup_django

setup_django(BENCH_DB)

# isort: split
import anthropic
import httpx2
import openai
from django.core.management import call_command
from django.db import connection
from django.test import override_settings
from django.test.utils import CaptureQueriesContext

from automate_core.governance.models import Budget
from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import APIKey, Tenant
from automate_core.testing.runtime import run_until_idle
from automate_llm import services
from automate_llm.gateway import Gateway, Target
from automate_llm.metering import CallContext
from automate_llm.models import LLMProvider, LLMRequest
from automate_llm.testing import AnthropicWire, OpenAIWire, Reply, WireServer
from automate_llm.types import ChatMessage, ChatOptions

SECRET = "BENCH_LLM_KEY"
API_KEY = "sk-bench-0123456789abcdef"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
SERVERS: dict[str, type[WireServer]] = {"openai": OpenAIWire, "anthropic": AnthropicWire}
ASK = [{"role": "user", "content": "Say hello."}]
MAX_TOKENS = 64
WARMUP = 30

Timed = Callable[[], Any]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * p))]


def cpu_busy(seconds: float = 0.5) -> float | None:
    """Share of CPU time not idle over ``seconds`` (Linux): a busy machine skews the figures."""

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


def interleaved(variants: dict[str, Timed], rounds: int) -> dict[str, list[float]]:
    """Seconds per call of each variant; one call of each per round, order rotating."""
    names = list(variants)
    times: dict[str, list[float]] = {name: [] for name in names}
    for i in range(rounds):
        shift = i % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            variants[name]()
            times[name].append(time.perf_counter() - started)
    return times


def statements(call: Timed) -> int:
    """How many SQL statements one call sends to the database (BEGIN and COMMIT included)."""
    with CaptureQueriesContext(connection) as sent:
        call()
    return len(sent.captured_queries)


def drain_records() -> tuple[int, float]:
    """Run the queued ``llm.record`` jobs here; how many ran and the milliseconds per job."""
    started = time.perf_counter()
    ran = run_until_idle()
    return ran, (time.perf_counter() - started) * 1e3 / max(ran, 1)


def tenant_with_provider(slug: str, server: WireServer) -> tuple[Tenant, LLMProvider]:
    tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": slug})
    OutboxJob.objects.filter(tenant=tenant).delete()
    LLMRequest.objects.filter(tenant=tenant).delete()
    LLMProvider.objects.filter(tenant=tenant).delete()
    Budget.objects.filter(tenant=tenant).delete()
    row = LLMProvider.objects.create(
        tenant=tenant,
        name="wire",
        slug="wire",
        provider_type=server.provider_type,
        config={"api_key": {"$secret": SECRET}, "base_url": server.base_url},
        is_default=True,
    )
    return tenant, row


def sdk_calls(kind: str, server: WireServer) -> tuple[Timed, Callable[[], int]]:
    """The bare SDK's call and stream (returning its event count)."""
    model = MODELS[kind]
    if kind == "openai":
        client: Any = openai.OpenAI(
            api_key=API_KEY, base_url=server.base_url, max_retries=0, http_client=httpx2.Client()
        )

        def call() -> Any:
            return client.chat.completions.create(model=model, messages=ASK, max_tokens=MAX_TOKENS)

        def stream() -> int:
            events = client.chat.completions.create(
                model=model,
                messages=ASK,
                max_tokens=MAX_TOKENS,
                stream=True,
                stream_options={"include_usage": True},
            )
            return sum(1 for _ in events)

        return call, stream
    client = anthropic.Anthropic(
        api_key=API_KEY, base_url=server.base_url, max_retries=0, http_client=httpx2.Client()
    )

    def call_anthropic() -> Any:
        return client.messages.create(model=model, messages=ASK, max_tokens=MAX_TOKENS)

    def stream_anthropic() -> int:
        events = client.messages.create(
            model=model, messages=ASK, max_tokens=MAX_TOKENS, stream=True
        )
        return sum(1 for _ in events)

    return call_anthropic, stream_anthropic


def bench_provider(kind: str, args: argparse.Namespace) -> None:
    model = MODELS[kind]
    busy = cpu_busy()
    if busy is not None and busy > 0.15:
        print(f"\nWARNING: CPUs {busy:.0%} busy before the {kind} run (figures will be high)")
    with SERVERS[kind]() as server:
        server.api_key = API_KEY
        free, free_row = tenant_with_provider(f"bench-llm-{kind}-free", server)
        limited, _ = tenant_with_provider(f"bench-llm-{kind}-budgets", server)
        APIKey.objects.filter(tenant=limited).delete()
        key, _ = APIKey.issue(tenant=limited, name="bench")
        for scope in (("tenant", str(limited.pk)), ("api_key", str(key.pk))):
            Budget.objects.create(
                tenant=limited,
                scope_type=scope[0],
                scope_id=scope[1],
                period=Budget.Period.TOTAL,
                limit_tokens=10**15,
                limit_cost=10**9,
            )
        keyed = CallContext(api_key_id=key.pk)

        sdk_call, sdk_stream = sdk_calls(kind, server)
        gateway = Gateway(sleep=lambda seconds: None)
        targets = [Target(model=model, provider=free_row)]
        messages = [ChatMessage(role="user", content="Say hello.")]
        options = ChatOptions(model="", max_tokens=MAX_TOKENS)

        calls: dict[str, Timed] = {
            "sdk": sdk_call,
            "gateway": lambda: gateway.chat(targets, messages, options),
            "services, no budget": lambda: services.chat(
                tenant=free, messages=ASK, model=model, max_tokens=MAX_TOKENS
            ),
            "services, 2 budgets": lambda: services.chat(
                tenant=limited, messages=ASK, model=model, max_tokens=MAX_TOKENS, context=keyed
            ),
        }
        interleaved(calls, WARMUP)
        drain_records()
        sent = {name: statements(call) for name, call in calls.items()}
        drain_records()
        times = interleaved(calls, args.calls)
        records, per_record_ms = drain_records()
        floor = statistics.median(times["sdk"])
        floor_p99 = percentile(times["sdk"], 0.99)
        print(f"\n{kind}: one call, {args.calls} calls each, interleaved")
        print(
            f"  {'variant':<22}{'median ms':>10}{'p99 ms':>9}{'x sdk':>7}"
            f"{'added median ms':>17}{'added p99 ms':>14}{'SQL':>5}"
        )
        for name, values in times.items():
            median, p99 = statistics.median(values), percentile(values, 0.99)
            print(
                f"  {name:<22}{median * 1e3:>10.3f}{p99 * 1e3:>9.3f}{median / floor:>7.2f}"
                f"{(median - floor) * 1e3:>17.3f}{(p99 - floor_p99) * 1e3:>14.3f}"
                f"{sent[name]:>5}"
            )
        print(
            f"  then the worker: {records} llm.record jobs, {per_record_ms:.3f} ms per job "
            "(claim, LLMRequest + LLMUsage + audit row, complete)"
        )

        def scripted(run: Callable[[], Any], chunks: int) -> Timed:
            reply = Reply(text="x" * chunks, chunk_size=1, output_tokens=chunks)

            def call() -> Any:
                server.script(reply)
                return run()

            return call

        def gateway_stream() -> int:
            return sum(1 for _ in gateway.stream(targets, messages, options))

        def services_stream() -> int:
            stream = services.stream_chat(
                tenant=limited, messages=ASK, model=model, max_tokens=MAX_TOKENS, context=keyed
            )
            return sum(1 for _ in stream)

        runs = {
            "sdk": sdk_stream,
            "gateway": gateway_stream,
            "services, 2 budgets": services_stream,
        }
        # Each variant streams a 1-chunk and a --chunks answer: the difference over the extra
        # chunks is the cost per chunk, apart from what every call costs once.
        streams: dict[str, Timed] = {}
        for name, run in runs.items():
            streams[f"{name}|1"] = scripted(run, 1)
            streams[f"{name}|n"] = scripted(run, args.chunks)
        interleaved(streams, 5)
        stream_times = interleaved(streams, args.stream_runs)
        drain_records()
        medians = {name: statistics.median(values) for name, values in stream_times.items()}

        def per_chunk(name: str) -> float:
            return (medians[f"{name}|n"] - medians[f"{name}|1"]) / (args.chunks - 1)

        print(
            f"{kind}: streamed answers of 1 and {args.chunks} one-character chunks, "
            f"{args.stream_runs} runs each, interleaved"
        )
        print(
            f"  {'variant':<22}{'1 chunk ms':>11}{f'{args.chunks} chunks ms':>15}"
            f"{'per chunk us':>14}{'added per chunk us':>20}"
        )
        for name in runs:
            print(
                f"  {name:<22}{medians[f'{name}|1'] * 1e3:>11.2f}"
                f"{medians[f'{name}|n'] * 1e3:>15.2f}{per_chunk(name) * 1e6:>14.1f}"
                f"{(per_chunk(name) - per_chunk('sdk')) * 1e6:>20.1f}"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--calls", type=int, default=400, help="timed calls per variant")
    parser.add_argument("--stream-runs", type=int, default=40, help="timed streams per variant")
    parser.add_argument("--chunks", type=int, default=400, help="chunks per streamed answer")
    parser.add_argument("--only", choices=sorted(SERVERS), help="one provider")
    args = parser.parse_args()
    os.environ[f"AUTOMATE_SECRET_{SECRET}"] = API_KEY
    call_command("migrate", verbosity=0)
    # The wire servers listen on 127.0.0.1, which the egress policy refuses by default.
    with override_settings(AUTOMATE={"EGRESS_ALLOW_PRIVATE": ["127.0.0.1"]}):
        for kind in [args.only] if args.only else sorted(SERVERS):
            bench_provider(kind, args)


if __name__ == "__main__":
    main()
