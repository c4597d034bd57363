"""Data-first workflows: a JSON graph, validated with node paths and compiled to the same form
as code-first workflows.

.. code-block:: json

    {"start": "lookup",
     "steps": {
       "lookup": {"type": "connector", "connector": "echo", "action": "echo",
                  "input": {"order": "{{ event.payload.order_id }}"},
                  "retry": {"max_attempts": 3, "base_delay": 2}, "next": "route"},
       "route": {"type": "branch", "default": "done",
                 "branches": [{"when": {">": [{"var": "event.payload.amount"}, 100]},
                               "next": "approve"}]},
       "approve": {"type": "wait", "signal": "approved", "timeout": 86400,
                   "on_timeout": "done", "next": "done"},
       "done": {"type": "complete",
                "result": {"order": "{{ steps.lookup.output.data.params.order }}"}}}}

Step types are a registry: the core registers the control-flow and connector types below, other
apps register theirs (``llm.chat``, ``rag.query``...) from their ``steps.py``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from automate_core.workflows.compiled import CompiledStep, CompiledWorkflow, StepCall, StepResult
from automate_core.workflows.flow import (
    NO_RETRY,
    Complete,
    Fail,
    Goto,
    Retry,
    Sleep,
    WaitEvent,
    WaitSignal,
)
from automate_core.workflows.templating import render_value

Node = Mapping[str, Any]
Problem = tuple[str, str]  # (node path, message)


@dataclass(frozen=True)
class StepType:
    """How one graph step type runs and which of its fields must be checked."""

    run: Callable[[Node, StepCall], StepResult]
    validate: Callable[[Node, str], list[Problem]] = lambda node, path: []
    # Fields holding step ids, checked to exist (``next`` is always checked).
    targets: tuple[str, ...] = ()


_types: dict[str, StepType] = {}


def register_step_type(name: str, step_type: StepType) -> None:
    _types[name] = step_type


def step_types() -> list[str]:
    return sorted(_types)


class GraphInvalid(ValueError):
    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        super().__init__("; ".join(f"{path}: {message}" for path, message in problems))


def validate(graph: Any) -> list[Problem]:
    """Every problem in ``graph``, each with the path of the node it is about."""
    if not isinstance(graph, Mapping):
        return [("$", "a workflow graph is a JSON object with 'start' and 'steps'")]
    steps = graph.get("steps")
    if not isinstance(steps, Mapping) or not steps:
        return [("steps", "must be a non-empty object of step id -> step")]
    problems: list[Problem] = []
    if graph.get("start") not in steps:
        problems.append(("start", f"must name a step; got {graph.get('start')!r}"))
    for step_id, node in steps.items():
        path = f"steps.{step_id}"
        if not isinstance(node, Mapping):
            problems.append((path, "must be an object"))
            continue
        kind = node.get("type")
        if kind not in _types:
            problems.append(
                (f"{path}.type", f"unknown step type {kind!r}; known: {', '.join(step_types())}")
            )
            continue
        step_type = _types[kind]
        for field in ("next", *step_type.targets):
            target = node.get(field)
            if target is not None and target not in steps:
                problems.append((f"{path}.{field}", f"unknown step {target!r}"))
        if kind == "branch":
            for i, branch in enumerate(node.get("branches") or []):
                target = branch.get("next") if isinstance(branch, Mapping) else None
                if target not in steps:
                    problems.append((f"{path}.branches[{i}].next", f"unknown step {target!r}"))
        problems.extend(_validate_retry(node.get("retry"), f"{path}.retry"))
        problems.extend(step_type.validate(node, path))
    return problems


def compile_graph(
    graph: Mapping[str, Any], *, name: str, version: str | None = None
) -> CompiledWorkflow:
    """The executable form of a valid graph; raises :class:`GraphInvalid` listing every problem."""
    problems = validate(graph)
    if problems:
        raise GraphInvalid(problems)
    steps = {
        step_id: CompiledStep(
            id=step_id,
            run=_bind(_types[node["type"]].run, node),
            retry=_retry(node.get("retry")),
            next=node.get("next"),
            kind=node["type"],
        )
        for step_id, node in graph["steps"].items()
    }
    return CompiledWorkflow(
        name=name,
        version=version or graph_digest(graph),
        start=graph["start"],
        steps=steps,
        initial_context=lambda kwargs, event: {**(graph.get("context") or {}), **kwargs},
        # No declared context: the run's context is whatever its start, signals and events
        # bring. A declared one lists the keys that payloads may set.
        open_context="context" not in graph,
    )


def graph_digest(graph: Mapping[str, Any]) -> str:
    canonical = json.dumps(graph, sort_keys=True, separators=(",", ":"))
    return f"graph-{hashlib.sha256(canonical.encode()).hexdigest()[:16]}"


def _bind(
    run: Callable[[Node, StepCall], StepResult], node: Node
) -> Callable[[StepCall], StepResult]:
    return lambda call: run(node, call)


def _retry(data: Any) -> Retry:
    return Retry(**data) if data else NO_RETRY


def _validate_retry(data: Any, path: str) -> list[Problem]:
    if data is None:
        return []
    if not isinstance(data, Mapping):
        return [(path, "must be an object")]
    allowed = {"max_attempts", "base_delay", "max_delay", "backoff", "jitter"}
    problems = [(f"{path}.{key}", "unknown retry option") for key in data if key not in allowed]
    attempts = data.get("max_attempts", 1)
    if not isinstance(attempts, int) or attempts < 1:
        problems.append((f"{path}.max_attempts", "must be a positive integer"))
    return problems


def _seconds(node: Node, field: str) -> timedelta | None:
    value = node.get(field)
    return None if value is None else timedelta(seconds=float(value))


def _require(node: Node, path: str, *fields: str) -> list[Problem]:
    return [(f"{path}.{f}", "is required") for f in fields if node.get(f) in (None, "")]


def _number(node: Node, path: str, field: str, required: bool = False) -> list[Problem]:
    value = node.get(field)
    if value is None:
        return [(f"{path}.{field}", "is required")] if required else []
    if not isinstance(value, int | float) or isinstance(value, bool) or value < 0:
        return [(f"{path}.{field}", "must be a number of seconds >= 0")]
    return []


# -- built-in step types -------------------------------------------------------------------------


def _noop(node: Node, call: StepCall) -> StepResult:
    return StepResult(output=render_value(node.get("output"), call.scope(), "output"))


def _branch(node: Node, call: StepCall) -> StepResult:
    from automate_core.rules.jsonlogic import apply

    scope = call.scope()
    for branch in node.get("branches") or []:
        if apply(branch.get("when"), scope):
            return StepResult(output={"next": branch["next"]}, transition=Goto(branch["next"]))
    default = node.get("default")
    if default is None:
        return StepResult(output={"next": None}, transition=Complete({}))
    return StepResult(output={"next": default}, transition=Goto(default))


def _sleep(node: Node, call: StepCall) -> StepResult:
    return StepResult(transition=Sleep(_seconds(node, "seconds") or timedelta(0), node.get("next")))


def _wait(node: Node, call: StepCall) -> StepResult:
    return StepResult(
        transition=WaitSignal(
            node["signal"], _seconds(node, "timeout"), node.get("on_timeout"), node.get("next")
        )
    )


def _wait_for_event(node: Node, call: StepCall) -> StepResult:
    return StepResult(
        transition=WaitEvent(
            node["event"],
            _seconds(node, "timeout"),
            node.get("on_timeout"),
            node.get("next"),
            render_value(node.get("match"), call.scope(), "match"),
        )
    )


def _complete(node: Node, call: StepCall) -> StepResult:
    result = render_value(node.get("result") or {}, call.scope(), "result")
    return StepResult(output=result, transition=Complete(result))


def _fail(node: Node, call: StepCall) -> StepResult:
    reason = str(render_value(node.get("reason") or "failed", call.scope(), "reason"))
    return StepResult(transition=Fail(reason))


def _connector(node: Node, call: StepCall) -> StepResult:
    params = render_value(node.get("input") or {}, call.scope(), "input")
    result = run_connector(node, params, call)
    return StepResult(output={"data": result.data, "status": result.status})


def run_connector(node: Node, params: Mapping[str, Any], call: StepCall) -> Any:
    """Run the connector action a node names (inline config or a ``connection`` profile) with
    ``params``, as part of step ``call`` (its idempotency key goes to the connector)."""
    from automate_core.connectors.base import ConnectorContext, connector_class
    from automate_core.governance.secrets import resolve_secrets
    from automate_core.tenancy.models import Tenant

    # SecretRefs are resolved only now, inside the step, and never written back to the graph.
    tenant = Tenant.objects.filter(pk=call.tenant_id).first() if call.tenant_id else None
    code, config = _connection(node, tenant)
    adapter = connector_class(code)(resolve_secrets(config, tenant))
    return adapter.execute(
        node["action"],
        dict(params),
        ConnectorContext(
            idempotency_key=call.idempotency_key,
            trace_id=call.trace_id,
            tenant_id=call.tenant_id,
            execution_id=call.execution_id,
            step_id=call.step_id,
        ),
    )


def _connection(node: Node, tenant: Any) -> tuple[str, dict[str, Any]]:
    """The connector code and config of a node: inline, or from the tenant's ConnectionProfile
    named by ``connection`` (inline ``config`` keys override the profile's)."""
    from automate_core.connectors.models import ConnectionProfile
    from automate_core.errors import NotFoundError

    name = node.get("connection")
    if not name:
        return node["connector"], dict(node.get("config") or {})
    profile = (
        ConnectionProfile.objects.for_tenant(tenant).filter(slug=name).first() if tenant else None
    )
    if profile is None:
        raise NotFoundError(f"No connection profile named {name!r} in this tenant")
    return profile.connector, {**profile.config, **(node.get("config") or {})}


def validate_connector(node: Node, path: str) -> list[Problem]:
    from automate_core.connectors.base import connector_class
    from automate_core.plugins import PluginNotFound

    if node.get("connection"):
        return _require(node, path, "action")  # the profile is checked when the step runs
    problems = _require(node, path, "connector", "action")
    if problems:
        return problems
    try:
        cls = connector_class(node["connector"])
    except PluginNotFound as exc:
        return [(f"{path}.connector", str(exc))]
    if node["action"] not in cls.actions:
        problems.append((f"{path}.action", f"{cls.code} has no action {node['action']!r}"))
    problems.extend((f"{path}.config", p) for p in cls.validate_config(node.get("config") or {}))
    return problems


def _validate_branch(node: Node, path: str) -> list[Problem]:
    branches = node.get("branches")
    if not isinstance(branches, list) or not branches:
        return [(f"{path}.branches", "must be a non-empty list of {when, next}")]
    return [
        (f"{path}.branches[{i}].when", "is required")
        for i, b in enumerate(branches)
        if not isinstance(b, Mapping) or "when" not in b
    ]


register_step_type("noop", StepType(_noop))
register_step_type("branch", StepType(_branch, _validate_branch, targets=("default",)))
register_step_type("sleep", StepType(_sleep, lambda n, p: _number(n, p, "seconds", required=True)))
register_step_type(
    "wait",
    StepType(
        _wait,
        lambda n, p: _require(n, p, "signal") + _number(n, p, "timeout"),
        targets=("on_timeout",),
    ),
)
register_step_type(
    "wait_for_event",
    StepType(
        _wait_for_event,
        lambda n, p: _require(n, p, "event") + _number(n, p, "timeout"),
        targets=("on_timeout",),
    ),
)
register_step_type("complete", StepType(_complete))
register_step_type("fail", StepType(_fail))
register_step_type("connector", StepType(_connector, validate_connector))
