"""Control flow a step returns to the engine, and the retry policy.

A step function runs, then returns what happens next. Its return value is checkpointed with the
step's result, so after a crash the engine resumes from the recorded transition and never runs
a completed step again. Returning ``None`` goes to the next step in declaration order (or
completes the run after the last step).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

#: A step named by its id or by the step method itself (``goto(self.finalize)``).
StepRef = str | Callable[..., Any]


def step_name(step: StepRef) -> str:
    """The id of ``step``: a string as is, a step method (bound or not) by its name."""
    if isinstance(step, str):
        return step
    name = getattr(step, "__name__", None)
    if not isinstance(name, str):
        raise TypeError(f"not a step: {step!r}; pass a step method or its name")
    return name


def _optional_step(step: StepRef | None) -> str | None:
    return None if step is None else step_name(step)


def _as_timedelta(value: timedelta | float | int) -> timedelta:
    return value if isinstance(value, timedelta) else timedelta(seconds=float(value))


@dataclass(frozen=True)
class Retry:
    """How a failing step is retried: attempt n waits ``base_delay * backoff**(n-1)``, capped at
    ``max_delay`` and shortened by up to ``jitter`` (a fraction), until ``max_attempts``.

    What a failed attempt checkpoints: the StepRun's attempt count and error, and the Context
    as the attempt left it (so ``ctx.attempts += 1`` before a ``raise`` is seen by the next
    attempt). Its output and transition are not recorded, and the next attempt re-runs the
    whole step. An egress refusal (``EgressDenied``) is a policy decision, not a transient
    failure: it fails the step at once, whatever the policy.
    """

    max_attempts: int = 3
    base_delay: timedelta | float = 1.0
    max_delay: timedelta | float = 600.0
    backoff: float = 2.0
    jitter: float = 0.1

    def delay_for(self, attempt: int) -> timedelta:
        """The wait before attempt ``attempt + 1``, after ``attempt`` attempts failed."""
        base = _as_timedelta(self.base_delay).total_seconds()
        cap = _as_timedelta(self.max_delay).total_seconds()
        seconds = min(cap, base * self.backoff ** max(0, attempt - 1))
        seconds *= 1 - random.uniform(0, self.jitter)
        return timedelta(seconds=seconds)

    def to_dict(self) -> dict[str, float]:
        return {
            "max_attempts": self.max_attempts,
            "base_delay": _as_timedelta(self.base_delay).total_seconds(),
            "max_delay": _as_timedelta(self.max_delay).total_seconds(),
            "backoff": self.backoff,
            "jitter": self.jitter,
        }


NO_RETRY = Retry(max_attempts=1)


@dataclass(frozen=True)
class Goto:
    """Continue at ``step``."""

    step: str


@dataclass(frozen=True)
class Sleep:
    """Wait ``duration`` (a timer in the database, not in memory), then continue at ``then``."""

    duration: timedelta
    then: str | None = None


@dataclass(frozen=True)
class WaitSignal:
    """Wait for ``engine.signal(name, ...)``; its payload merges into the Context. On timeout,
    continue at ``on_timeout`` (or fail the run if None)."""

    name: str
    timeout: timedelta | None = None
    on_timeout: str | None = None
    then: str | None = None


@dataclass(frozen=True)
class WaitEvent:
    """Wait for an Event of type ``name`` in the run's tenant. A run started by an event about
    an entity waits for one about the same entity (same model and id); ``match`` (JSONLogic
    over ``{event, payload}``) replaces that correlation, ``broadcast`` drops it."""

    name: str
    timeout: timedelta | None = None
    on_timeout: str | None = None
    then: str | None = None
    match: Any = None
    broadcast: bool = False


@dataclass(frozen=True)
class Complete:
    """End the run successfully with ``result``."""

    result: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Fail:
    """End the run as failed with ``reason``; no retry."""

    reason: str


Transition = Goto | Sleep | WaitSignal | WaitEvent | Complete | Fail


def goto(step: StepRef) -> Goto:
    """Continue at ``step`` (its name, or the step method: ``goto(self.finalize)``)."""
    return Goto(step_name(step))


def sleep(duration: timedelta | float, then: StepRef | None = None) -> Sleep:
    return Sleep(_as_timedelta(duration), _optional_step(then))


class _Wait:
    """``wait("approved", timeout=...)`` and its spelled-out form ``wait.for_signal(...)``."""

    def __call__(
        self,
        signal: str,
        timeout: timedelta | float | None = None,
        on_timeout: StepRef | None = None,
        then: StepRef | None = None,
    ) -> WaitSignal:
        return WaitSignal(
            signal,
            None if timeout is None else _as_timedelta(timeout),
            _optional_step(on_timeout),
            _optional_step(then),
        )

    def for_signal(
        self,
        signal: str,
        timeout: timedelta | float | None = None,
        on_timeout: StepRef | None = None,
        then: StepRef | None = None,
    ) -> WaitSignal:
        return self(signal, timeout, on_timeout, then)


wait = _Wait()


def wait_for_event(
    name: str,
    timeout: timedelta | float | None = None,
    on_timeout: StepRef | None = None,
    then: StepRef | None = None,
    match: Any = None,
    *,
    broadcast: bool = False,
) -> WaitEvent:
    """Wait until an Event ``name`` occurs (or ``engine.signal("event:<name>", ...)``): about
    this run's entity by default, matching ``match`` when given, any in the tenant with
    ``broadcast=True``. Its payload merges into the Context; on timeout go to ``on_timeout``."""
    return WaitEvent(
        name,
        None if timeout is None else _as_timedelta(timeout),
        _optional_step(on_timeout),
        _optional_step(then),
        match,
        broadcast,
    )


def complete(**result: Any) -> Complete:
    return Complete(result)


def fail(reason: str) -> Fail:
    return Fail(reason)


def transition_to_dict(transition: Transition | None) -> dict[str, Any] | None:
    """The JSON form checkpointed with a completed step."""
    if transition is None:
        return None
    if isinstance(transition, Goto):
        return {"kind": "goto", "step": transition.step}
    if isinstance(transition, Sleep):
        return {
            "kind": "sleep",
            "seconds": transition.duration.total_seconds(),
            "then": transition.then,
        }
    if isinstance(transition, WaitSignal | WaitEvent):
        kind = "wait_signal" if isinstance(transition, WaitSignal) else "wait_event"
        data: dict[str, Any] = {
            "kind": kind,
            "name": transition.name,
            "timeout": None if transition.timeout is None else transition.timeout.total_seconds(),
            "on_timeout": transition.on_timeout,
            "then": transition.then,
        }
        if isinstance(transition, WaitEvent):
            data["match"] = transition.match
            if transition.broadcast:
                data["broadcast"] = True
        return data
    if isinstance(transition, Complete):
        return {"kind": "complete", "result": transition.result}
    return {"kind": "fail", "reason": transition.reason}


def transition_from_dict(data: dict[str, Any] | None) -> Transition | None:
    if data is None:
        return None
    kind = data["kind"]
    seconds = data.get("timeout")
    timeout = None if seconds is None else timedelta(seconds=seconds)
    if kind == "goto":
        return Goto(data["step"])
    if kind == "sleep":
        return Sleep(timedelta(seconds=data["seconds"]), data.get("then"))
    if kind == "wait_signal":
        return WaitSignal(data["name"], timeout, data.get("on_timeout"), data.get("then"))
    if kind == "wait_event":
        return WaitEvent(
            data["name"],
            timeout,
            data.get("on_timeout"),
            data.get("then"),
            data.get("match"),
            bool(data.get("broadcast")),
        )
    if kind == "complete":
        return Complete(data.get("result") or {})
    if kind == "fail":
        return Fail(data["reason"])
    raise ValueError(f"unknown transition kind {kind!r}")
