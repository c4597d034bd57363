"""An ``llm.agent`` run whose worker process is killed with SIGKILL between two tool calls.

The model (a wire server) asks for tool A, then takes long over its next answer; the worker is
killed while it waits, after tool A's visit committed. A new worker retries that model turn,
which now asks for tool B, then answers. Tool A reached the business API once and only once,
tool B once, the run completed with the final answer, and no step visit completed twice.
"""

from __future__ import annotations

import signal
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from automate_core.executions.models import Execution, StepRun
from automate_core.outbox.models import OutboxJob
from automate_core.tenancy.models import Tenant
from automate_core.testing.loopback import RecordingServer
from automate_core.testing.loopback import Reply as HttpReply
from automate_core.workflows import engine
from automate_core.workflows.models import Automation
from automate_llm.metering import RECORD_JOB
from automate_llm.models import LLMModelConfig, LLMProvider, LLMRequest
from automate_llm.testing import Reply, ToolUse, WireServer
from automate_llm.testing.providers import MODELS, SERVERS, WIRE_API_KEY, WIRE_SECRET
from tests.automate_core.outbox.conftest import start_worker

pytestmark = pytest.mark.e2e

WORKER_ARGS = ["--concurrency", "1", "--lease-seconds", "1.5", "--reap-seconds", "0.25"]
WORKER_ARGS += ["--poll-ms", "200"]
#: Long enough that the killed worker is still waiting on it; never answered to anyone.
STALLED_TURN_SECONDS = 60.0


@pytest.fixture(params=sorted(SERVERS))
def model_server(request: pytest.FixtureRequest) -> Iterator[WireServer]:
    """Each wire server in turn: the crash is survived with either provider."""
    with SERVERS[request.param]() as server:
        server.api_key = WIRE_API_KEY
        yield server


@pytest.fixture
def default_model(tenant: Tenant, model_server: WireServer) -> LLMModelConfig:
    """The tenant's default model, on ``model_server``; its key is a SecretRef the workers
    resolve from their environment."""
    provider = LLMProvider.objects.create(
        tenant=tenant,
        name="Wire",
        provider_type=model_server.provider_type,
        config={"api_key": {"$secret": WIRE_SECRET}, "base_url": model_server.base_url},
        is_default=True,
    )
    return LLMModelConfig.objects.create(
        tenant=tenant,
        provider=provider,
        name="Wire model",
        model_id=MODELS[model_server.provider_type],
        is_default=True,
    )


@pytest.fixture
def shop() -> Iterator[RecordingServer]:
    """The business API both tools call."""
    with RecordingServer(lambda received: HttpReply.json({"ok": received.path})) as running:
        yield running


@pytest.fixture
def agent_env(worker_env: dict[str, str]) -> dict[str, str]:
    """Worker environment: loopback egress allowed, the wire server's API key as a secret."""
    return {
        **worker_env,
        "DJANGO_SETTINGS_MODULE": "tests.e2e.loopback_settings",
        f"AUTOMATE_SECRET_{WIRE_SECRET}": WIRE_API_KEY,
    }


def _tool(name: str, shop: RecordingServer) -> dict[str, Any]:
    return {
        "type": "connector",
        "name": name,
        "description": f"Tool {name}",
        "parameters": {"type": "object", "properties": {"order_id": {"type": "string"}}},
        "connector": "http",
        "action": "request",
        "config": {"base_url": shop.url},
        "input": {"method": "POST", "url": f"/{name}", "json": "{{ arguments }}"},
    }


def _wait_for(condition: Callable[[], bool], log: Path, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"{what} not met in {timeout}s; worker log:\n{log.read_text()[-4000:]}")
        time.sleep(0.05)


def test_a_worker_killed_between_tool_calls_never_repeats_a_completed_tool_call(
    agent_env, tenant, model_server, default_model, shop, tmp_path
):
    wire = model_server
    wire.script(
        Reply(tool_calls=(ToolUse("tool_a", {"order_id": "A-1"}),)),
        Reply(text="never delivered", delay=STALLED_TURN_SECONDS),
        Reply(tool_calls=(ToolUse("tool_b", {"order_id": "B-2"}),)),
        Reply(text="Both orders are fine."),
    )
    automation = Automation.objects.create(tenant=tenant, name="Agent", slug="crash-agent")
    automation.new_version(
        {
            "start": "agent",
            "steps": {
                "agent": {
                    "type": "llm.agent",
                    "user": "Check the orders.",
                    "tools": [_tool("tool_a", shop), _tool("tool_b", shop)],
                    "next": "done",
                },
                "done": {"type": "complete", "result": {"answer": "{{ steps.agent.output.text }}"}},
            },
        }
    ).publish()
    run = engine.start("crash-agent", tenant=tenant)
    log = tmp_path / "workers.log"

    first = start_worker(agent_env, log, *WORKER_ARGS)
    try:
        _wait_for(lambda: len(wire.requests) == 2, log, "the second model turn was asked")
        visits = StepRun.objects.filter(execution=run, status=StepRun.Status.COMPLETED)
        assert visits.count() == 2  # the first model turn and tool A, both committed
        first.send_signal(signal.SIGKILL)
        first.wait(timeout=10)
    finally:
        if first.poll() is None:
            first.kill()
    assert [r.path for r in shop.received] == ["/tool_a"]

    second = start_worker(agent_env, log, *WORKER_ARGS)
    try:
        _wait_for(
            lambda: Execution.objects.get(pk=run.pk).status == Execution.Status.COMPLETED,
            log,
            "the run completed",
        )
        _wait_for(
            lambda: (
                not OutboxJob.objects.filter(kind=RECORD_JOB)
                .exclude(status=OutboxJob.Status.DONE)
                .exists()
            ),
            log,
            "the calls' records were written",
        )
    finally:
        second.send_signal(signal.SIGTERM)
        second.wait(timeout=30)

    run.refresh_from_db()
    assert run.result == {"answer": "Both orders are fine."}
    assert Counter(r.path for r in shop.received) == {"/tool_a": 1, "/tool_b": 1}
    steps = list(StepRun.objects.filter(execution=run).order_by("seq"))
    assert [(s.step_id, s.status) for s in steps] == [("agent", "completed")] * 5 + [
        ("done", "completed")
    ]
    keys = [s.idempotency_key for s in steps]
    assert len(set(keys)) == len(keys)  # each visit ran under its own key, once completed
    tool_a, tool_b = (steps[1], steps[3])
    assert [r.headers["idempotency-key"] for r in shop.received] == [
        tool_a.idempotency_key,
        tool_b.idempotency_key,
    ]
    # The killed model turn was retried with the same idempotency key, then went on.
    asked = [r.headers["idempotency-key"] for r in wire.requests]
    assert len(asked) == 4
    assert asked[1] == asked[2] == steps[2].idempotency_key
    calls = LLMRequest.objects.for_tenant(tenant).filter(execution_id=run.pk, success=True)
    assert calls.count() == 3
    assert run.usage["calls"] == 3
