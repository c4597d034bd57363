"""A double of the Modal SDK at its boundary, for tests of code that spawns GPU jobs.

:func:`fake_modal` replaces the SDK the ``modal`` backend uses with fakes of
``modal.Function``, ``modal.FunctionCall`` and ``modal.Client`` that keep the SDK's signatures
and raise the SDK's own exceptions (``modal.exception.NotFoundError`` for an undeployed
function, ``modal.exception.TimeoutError`` from ``get(timeout=0)`` while a call runs, and a
``get()`` with no timeout that blocks until the call ends, as the SDK's does). Calls
live in a :class:`FakeModalCloud` the test drives::

    with fake_modal() as cloud:
        cloud.deploy("asr", "transcribe")
        cloud.script("asr", "transcribe", MemoryError("CUDA out of memory"), {"text": "hi"})
        job = services.spawn_job(endpoint, {"audio": "..."})   # 1st call: fails OOM when polled
        ...
        cloud.finish(call_id, {"text": "hello"})               # or complete a call by hand

A scripted outcome is given to each new call of that function in turn: an exception fails the
call, anything else is its output; a call with no script stays running until the test ends it.
``cloud.crash_after_spawn()`` makes the next spawn start its call and then raise
:class:`WorkerKilled`, as a worker killed between the spawn and its record would stop.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any
from unittest import mock

import modal.exception

__all__ = ["FakeCall", "FakeModalCloud", "WorkerKilled", "fake_modal"]

_PENDING = object()


class WorkerKilled(BaseException):
    """The worker stopped right after a spawn reached Modal (a ``BaseException``, so no
    ``except Exception`` of the code under test catches it)."""


@dataclass
class FakeCall:
    """One spawned call: what it was spawned with and how it ends."""

    object_id: str
    app_name: str
    function_name: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any]
    options: dict[str, Any]
    client: Any
    result: Any = _PENDING
    cancelled: bool = False

    @property
    def gpu(self) -> str | None:
        return self.options.get("gpu")

    @property
    def automate(self) -> dict[str, str]:
        return dict(self.kwargs.get("automate") or {})


@dataclass
class FakeModalCloud:
    """Deployed functions and their calls, in spawn order."""

    functions: set[tuple[str, str]] = field(default_factory=set)
    scripts: dict[tuple[str, str], list[Any]] = field(default_factory=dict)
    calls: dict[str, FakeCall] = field(default_factory=dict)
    clients: list[FakeClient] = field(default_factory=list)
    unreachable: bool = False
    crashes: int = 0
    _ids: Iterator[int] = field(default_factory=lambda: itertools.count(1))
    _changed: threading.Condition = field(default_factory=threading.Condition, repr=False)

    def deploy(self, app_name: str, function_name: str) -> None:
        self.functions.add((app_name, function_name))

    def script(self, app_name: str, function_name: str, *outcomes: Any) -> None:
        """Outcomes (an exception, or an output) for the next calls of the function."""
        self.scripts.setdefault((app_name, function_name), []).extend(outcomes)

    def crash_after_spawn(self, times: int = 1) -> None:
        """The next ``times`` spawns start their call, then raise :class:`WorkerKilled`."""
        self.crashes += times

    def finish(self, call_id: str, output: Any) -> None:
        self._end(call_id, result=output)

    def fail(self, call_id: str, error: BaseException) -> None:
        self._end(call_id, result=error)

    def _end(self, call_id: str, **changes: Any) -> None:
        with self._changed:
            for name, value in changes.items():
                setattr(self.calls[call_id], name, value)
            self._changed.notify_all()

    def _wait(self, call: FakeCall, timeout: float | None) -> None:
        with self._changed:
            self._changed.wait_for(
                lambda: call.cancelled or call.result is not _PENDING, timeout=timeout
            )

    @property
    def spawned(self) -> list[FakeCall]:
        return list(self.calls.values())

    def _spawn(self, function: FakeFunction, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        key = (function.app_name, function.name)
        call = FakeCall(
            object_id=f"fc-{next(self._ids):06d}",
            app_name=function.app_name,
            function_name=function.name,
            args=args,
            kwargs=kwargs,
            options=dict(function.options),
            client=function.client,
        )
        script = self.scripts.get(key)
        if script:
            call.result = script.pop(0)
        self.calls[call.object_id] = call
        if self.crashes:
            self.crashes -= 1
            raise WorkerKilled(f"killed after spawning {call.object_id}")
        return FakeFunctionCall(self, call.object_id)

    def _reach(self) -> None:
        if self.unreachable:
            raise modal.exception.ConnectionError("fake Modal is unreachable")


class FakeClient:
    def __init__(self, token_id: str, token_secret: str) -> None:
        self.token_id, self.token_secret = token_id, token_secret


class FakeFunction:
    cloud: FakeModalCloud

    def __init__(self, app_name: str, name: str, client: Any, options: dict[str, Any]) -> None:
        self.app_name, self.name, self.client, self.options = app_name, name, client, options

    @classmethod
    def from_name(
        cls,
        app_name: str,
        name: str,
        *,
        version: int | None = None,
        environment_name: str | None = None,
        client: Any = None,
    ) -> FakeFunction:
        cls.cloud._reach()
        if (app_name, name) not in cls.cloud.functions:
            raise modal.exception.NotFoundError(
                f"Lookup failed for Function '{name}' from the '{app_name}' app"
            )
        return cls(app_name, name, client, {"environment_name": environment_name})

    def with_options(self, *, gpu: str | None = None, **options: Any) -> FakeFunction:
        merged = {**self.options, **options, "gpu": gpu}
        return type(self)(self.app_name, self.name, self.client, merged)

    def spawn(self, *args: Any, **kwargs: Any) -> FakeFunctionCall:
        self.cloud._reach()
        return self.cloud._spawn(self, args, kwargs)


class FakeFunctionCall:
    cloud: FakeModalCloud

    def __init__(self, cloud: FakeModalCloud, object_id: str) -> None:
        self._cloud, self.object_id = cloud, object_id

    @classmethod
    def from_id(cls, function_call_id: str, client: Any = None) -> FakeFunctionCall:
        cls.cloud._reach()
        if function_call_id not in cls.cloud.calls:
            raise modal.exception.NotFoundError(f"FunctionCall {function_call_id} not found")
        return cls(cls.cloud, function_call_id)

    def get(self, timeout: float | None = None, *, index: int = 0) -> Any:
        self._cloud._reach()
        call = self._cloud.calls[self.object_id]
        self._cloud._wait(call, timeout)
        if call.cancelled:
            raise modal.exception.RemoteError("the call was cancelled")
        if call.result is _PENDING:
            raise modal.exception.TimeoutError("the call has not finished")
        if isinstance(call.result, BaseException):
            raise call.result
        return call.result

    def cancel(self, terminate_containers: bool = False) -> None:
        self._cloud._reach()
        self._cloud._end(self.object_id, cancelled=True)


@contextmanager
def fake_modal() -> Iterator[FakeModalCloud]:
    """Put the double in place of the SDK the ``modal`` backend looks up, for the block."""
    cloud = FakeModalCloud()
    function = type("Function", (FakeFunction,), {"cloud": cloud})
    function_call = type("FunctionCall", (FakeFunctionCall,), {"cloud": cloud})

    def from_credentials(token_id: str, token_secret: str) -> FakeClient:
        client = FakeClient(token_id, token_secret)
        cloud.clients.append(client)
        return client

    sdk = SimpleNamespace(
        Function=function,
        FunctionCall=function_call,
        Client=SimpleNamespace(from_credentials=from_credentials),
        exception=modal.exception,
    )
    with mock.patch("automate_modal.backends.modal_sdk.modal", sdk):
        yield cloud
