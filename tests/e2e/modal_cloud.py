"""A fake Modal shared by processes: the SDK double of the Modal crash test.

Worker processes spawn through it and the test process ends calls and counts spawns, so its
state lives in one directory: ``calls/<id>.json`` for each call, ``calls/<id>.result.json`` once
the test ends it, and ``spawns.log`` with one line per spawn (appends of one short line are
atomic across processes). A ``crash-<n>`` token file makes the next spawn that removes it kill
its own process with SIGKILL right after the call started: a worker dying between a spawn and
its record. :func:`install` puts it in place of the SDK the ``modal`` backend uses.
"""

from __future__ import annotations

import json
import os
import signal
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import modal.exception

#: The environment variable naming the directory a worker's double uses.
ENV = "AUTOMATE_TEST_MODAL_CLOUD"


class SharedCloud:
    def __init__(self, root: Path) -> None:
        self.root = root
        self.calls = root / "calls"
        self.calls.mkdir(parents=True, exist_ok=True)
        self.log = root / "spawns.log"

    def crash_after_spawn(self, times: int) -> None:
        for n in range(times):
            (self.root / f"crash-{n}").touch()

    def spawn(self, input: Any, kwargs: dict[str, Any], options: dict[str, Any]) -> str:
        call_id = f"fc-{uuid.uuid4().hex}"
        call = {"id": call_id, "input": input, "automate": kwargs.get("automate"), **options}
        (self.calls / f"{call_id}.json").write_text(json.dumps(call))
        with self.log.open("a") as log:
            log.write(f"{call_id} {os.getpid()}\n")
        if self._take_crash_token():
            os.kill(os.getpid(), signal.SIGKILL)
        return call_id

    def spawned(self) -> list[str]:
        if not self.log.exists():
            return []
        return [line.split()[0] for line in self.log.read_text().splitlines() if line]

    def call(self, call_id: str) -> dict[str, Any]:
        return dict(json.loads((self.calls / f"{call_id}.json").read_text()))

    def finish(self, call_id: str, output: Any) -> None:
        partial = self.calls / f"{call_id}.result.partial"
        partial.write_text(json.dumps({"output": output}))
        os.replace(partial, self.calls / f"{call_id}.result.json")

    def result(self, call_id: str) -> Any:
        path = self.calls / f"{call_id}.result.json"
        if not path.exists():
            raise modal.exception.TimeoutError("the call has not finished")
        return json.loads(path.read_text())["output"]

    def _take_crash_token(self) -> bool:
        for token in sorted(self.root.glob("crash-*")):
            try:
                token.unlink()  # only one process removes a given token
            except FileNotFoundError:
                continue
            return True
        return False


def sdk(cloud: SharedCloud) -> SimpleNamespace:
    """``modal.Function``, ``modal.FunctionCall`` and ``modal.exception`` over ``cloud``, with
    the SDK's signatures for what the ``modal`` backend calls."""

    class Function:
        def __init__(self, options: dict[str, Any]) -> None:
            self.options = options

        @classmethod
        def from_name(
            cls,
            app_name: str,
            name: str,
            *,
            environment_name: str | None = None,
            client: Any = None,
        ) -> Function:
            return cls({"app": app_name, "function": name})

        def with_options(self, *, gpu: str | None = None, **options: Any) -> Function:
            return type(self)({**self.options, **options, "gpu": gpu})

        def spawn(self, *args: Any, **kwargs: Any) -> FunctionCall:
            return FunctionCall(cloud.spawn(args[0], kwargs, self.options))

    class FunctionCall:
        def __init__(self, object_id: str) -> None:
            self.object_id = object_id

        @classmethod
        def from_id(cls, function_call_id: str, client: Any = None) -> FunctionCall:
            return cls(function_call_id)

        def get(self, timeout: float | None = None) -> Any:
            return cloud.result(self.object_id)

        def cancel(self, terminate_containers: bool = False) -> None:
            (cloud.calls / f"{self.object_id}.cancelled").touch()

    return SimpleNamespace(Function=Function, FunctionCall=FunctionCall, exception=modal.exception)


def install(cloud: SharedCloud) -> None:
    from automate_modal.backends import modal_sdk

    modal_sdk.modal = sdk(cloud)  # type: ignore[assignment]
