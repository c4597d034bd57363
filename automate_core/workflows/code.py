"""Code-first workflows: ``@workflow`` / ``@event_workflow`` classes whose methods are ``@step``s.

.. code-block:: python

    @workflow("onboarding")
    class Onboarding:
        class Context(BaseModel):
            user_id: int
            approved: bool = False

        @step(start=True, retry=Retry(max_attempts=5))
        def welcome(self):
            send_mail(get_context().user_id)
            return wait("approved", timeout=timedelta(days=2), on_timeout="remind", then="done")

        @step()
        def remind(self): ...

        @step()
        def done(self):
            return complete(approved=get_context().approved)

Steps run in declaration order unless one returns a transition. The class is compiled once at
import into the same :class:`CompiledWorkflow` a JSON graph compiles to. Its version is a hash of
the step names, retry policies and source, recorded on every execution.
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from pydantic import BaseModel

from automate_core.workflows.compiled import (
    CompiledStep,
    CompiledWorkflow,
    StepCall,
    StepResult,
    bound_context,
)
from automate_core.workflows.flow import NO_RETRY, Retry, Transition
from automate_core.workflows.registry import register

if TYPE_CHECKING:
    from automate_core.events.models import Event

T = TypeVar("T", bound=type)
_STEP_MARK = "__automate_step__"


class WorkflowDefinitionError(Exception):
    """The workflow class is not a valid definition; the message says what to fix."""


def step(
    start: bool = False, retry: Retry | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Mark a method as a step. ``retry`` overrides the workflow's default retry policy."""

    def mark(function: Callable[..., Any]) -> Callable[..., Any]:
        setattr(function, _STEP_MARK, {"start": start, "retry": retry})
        return function

    return mark


def workflow(name: str, *, default_retry: Retry = NO_RETRY) -> Callable[[T], T]:
    """Register the decorated class as the workflow ``name``; ``engine.start(name, **kwargs)``."""

    def decorate(cls: T) -> T:
        register(compile_class(cls, name=name, default_retry=default_retry))
        return cls

    return decorate


def event_workflow(
    event_name: str,
    *,
    offset_minutes: int = 0,
    default_retry: Retry = NO_RETRY,
    name: str | None = None,
) -> Callable[[T], T]:
    """Start a run each time ``event_name`` occurs, ``offset_minutes`` after (or before, if
    negative) the event's time. Offsets already in the past run at once; future ones create the
    run WAITING until then. ``create_context(cls, event=None)`` builds the Context from the
    Event model (``event.entity`` is the row it is about)."""

    def decorate(cls: T) -> T:
        compiled = compile_class(
            cls,
            name=name or f"{event_name}:{cls.__name__}",
            default_retry=default_retry,
            event_name=event_name,
            offset_minutes=offset_minutes,
        )
        register(compiled)
        return cls

    return decorate


def compile_class(
    cls: type,
    *,
    name: str,
    default_retry: Retry,
    event_name: str | None = None,
    offset_minutes: int = 0,
) -> CompiledWorkflow:
    methods = [
        (attr, fn) for attr, fn in vars(cls).items() if callable(fn) and hasattr(fn, _STEP_MARK)
    ]
    if not methods:
        raise WorkflowDefinitionError(f"workflow {name!r} ({cls.__name__}) has no @step methods")
    starts = [attr for attr, fn in methods if getattr(fn, _STEP_MARK)["start"]]
    if len(starts) > 1:
        raise WorkflowDefinitionError(f"workflow {name!r} has several start steps: {starts}")
    start = starts[0] if starts else methods[0][0]

    context_model = getattr(cls, "Context", None)
    if context_model is not None and not (
        isinstance(context_model, type) and issubclass(context_model, BaseModel)
    ):
        raise WorkflowDefinitionError(f"{cls.__name__}.Context must be a pydantic BaseModel")

    instance = cls()
    steps: dict[str, CompiledStep] = {}
    for index, (attr, fn) in enumerate(methods):
        successor = methods[index + 1][0] if index + 1 < len(methods) else None
        retry = getattr(fn, _STEP_MARK)["retry"] or default_retry
        steps[attr] = CompiledStep(
            id=attr, run=_runner(getattr(instance, attr)), retry=retry, next=successor
        )

    return CompiledWorkflow(
        name=name,
        version=_version(name, methods, default_retry),
        start=start,
        steps=steps,
        context_model=context_model,
        initial_context=_context_factory(instance, context_model),
        event_name=event_name,
        offset_minutes=offset_minutes,
    )


def _runner(bound_method: Callable[[], Any]) -> Callable[[StepCall], StepResult]:
    def run(call: StepCall) -> StepResult:
        with bound_context(call.context, call):
            returned = bound_method()
        transition: Transition | None = returned if returned is not None else None
        return StepResult(output=None, transition=transition)

    return run


def _context_factory(
    instance: Any, context_model: type[BaseModel] | None
) -> Callable[[Mapping[str, Any], Event | None], dict[str, Any]]:
    """How a run's first Context is built. Started by an event: ``create_context(event)`` with
    the Event model (``event.entity``, ``event.payload``, ``event.type``), as a method or a
    classmethod. Started by hand: ``create_context(**kwargs)`` when it takes those keywords
    and no ``event``, else ``Context(**kwargs)``."""
    create = getattr(instance, "create_context", None)
    by_hand = create is not None and "event" not in inspect.signature(create).parameters

    def initial(kwargs: Mapping[str, Any], event: Event | None) -> dict[str, Any]:
        if create is not None and event is not None:
            context = create(event)
        elif create is not None and by_hand and _accepts(create, kwargs):
            context = create(**kwargs)
        elif context_model is not None:
            context = context_model(**kwargs)
        else:
            return dict(kwargs)
        return context.model_dump(mode="json") if isinstance(context, BaseModel) else dict(context)

    return initial


def _accepts(function: Callable[..., Any], kwargs: Mapping[str, Any]) -> bool:
    try:
        inspect.signature(function).bind(**kwargs)
    except TypeError:
        return False
    return True


def _version(name: str, methods: list[tuple[str, Any]], default_retry: Retry) -> str:
    parts: list[Any] = [name, default_retry.to_dict()]
    for attr, fn in methods:
        mark = getattr(fn, _STEP_MARK)
        try:
            source = inspect.getsource(fn)
        except (OSError, TypeError):
            source = fn.__code__.co_code.hex()
        parts.append([attr, mark["start"], mark["retry"] and mark["retry"].to_dict(), source])
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()
    return f"code-{digest[:16]}"
