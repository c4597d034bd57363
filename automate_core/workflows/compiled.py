"""The one executable form of a workflow, whether written as code or as a JSON graph.

The engine only ever sees a :class:`CompiledWorkflow`: a start step and steps that each take a
:class:`StepCall` and return a :class:`StepResult` (an output to checkpoint and a transition).
"""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from automate_core.workflows.flow import NO_RETRY, Retry, Transition

if TYPE_CHECKING:
    from automate_core.events.models import Event


@dataclass(frozen=True)
class StepCall:
    """Everything a step may read. ``idempotency_key`` is stable across retries of the step."""

    execution_id: str
    step_id: str
    attempt: int
    idempotency_key: str
    context: Any
    event: Mapping[str, Any] | None = None
    steps: Mapping[str, Any] = field(default_factory=dict)
    trace_id: str | None = None
    tenant_id: Any = None

    def scope(self) -> dict[str, Any]:
        """The names step-input templates see."""
        context = (
            self.context.model_dump(mode="json")
            if isinstance(self.context, BaseModel)
            else self.context
        )
        return {"event": self.event or {}, "context": context, "steps": self.steps}


@dataclass(frozen=True)
class StepResult:
    output: Any = None
    transition: Transition | None = None


@dataclass(frozen=True)
class CompiledStep:
    id: str
    run: Callable[[StepCall], StepResult]
    retry: Retry = NO_RETRY
    next: str | None = None  # where ``None`` from the step leads; None completes the run
    kind: str = "code"


@dataclass(frozen=True)
class CompiledWorkflow:
    name: str
    version: str
    start: str
    steps: Mapping[str, CompiledStep]
    context_model: type[BaseModel] | None = None
    # Builds the initial context (a JSON dict) from the start kwargs and the triggering event.
    initial_context: Callable[[Mapping[str, Any], Event | None], dict[str, Any]] = (
        lambda kwargs, event: dict(kwargs)
    )
    event_name: str | None = None
    offset_minutes: int = 0
    # Without a Context model: whether signal and event payloads merge in whole (a graph with
    # no declared ``context``) or only into the keys the context already has.
    open_context: bool = False

    def load_context(self, data: Mapping[str, Any]) -> Any:
        """The context object a step works on: the pydantic model, or a plain dict."""
        return self.context_model(**data) if self.context_model else dict(data)

    def dump_context(self, context: Any) -> dict[str, Any]:
        if isinstance(context, BaseModel):
            return context.model_dump(mode="json")
        return dict(context)

    def merge_into_context(
        self, data: Mapping[str, Any], payload: Mapping[str, Any]
    ) -> dict[str, Any]:
        """Signal and event payloads update the Context model's fields (others are ignored);
        a plain context takes every key when open, else only the keys it has."""
        if self.context_model is None and self.open_context:
            return {**data, **payload}
        fields = set(self.context_model.model_fields) if self.context_model else set(data)
        merged = {**data, **{k: v for k, v in payload.items() if k in fields}}
        return self.dump_context(self.load_context(merged))


_current_context: contextvars.ContextVar[Any] = contextvars.ContextVar("workflow_context")
_current_call: contextvars.ContextVar[StepCall] = contextvars.ContextVar("workflow_step_call")


def get_context() -> Any:
    """The running step's context. Changes made to it are checkpointed when the step ends,
    also when it raises: a retry starts from the context the failed attempt left."""
    try:
        return _current_context.get()
    except LookupError:
        raise RuntimeError(
            "get_context() is only available inside a running workflow step"
        ) from None


def current_step_call() -> StepCall:
    """The running step's call (run, step, idempotency key, trace), for services that attribute
    their work to it, such as metered AI calls made from a code-first step."""
    try:
        return _current_call.get()
    except LookupError:
        raise RuntimeError("only available inside a running workflow step") from None


@contextmanager
def bound_context(context: Any, call: StepCall | None = None) -> Iterator[Any]:
    token = _current_context.set(context)
    call_token = _current_call.set(call) if call is not None else None
    try:
        yield context
    finally:
        if call_token is not None:
            _current_call.reset(call_token)
        _current_context.reset(token)
