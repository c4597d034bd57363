"""The ``local`` backend: runs the endpoint's function (a dotted path) in a subprocess on this
machine, so GPU steps can be tried with no Modal account (``make run``'s demo).

Each call gets a directory holding its input (``call.json``), the process id and, once the
function returns, ``result.json`` (written by :mod:`automate_modal.backends.local_runner`). The
process is detached from the worker: the worker does not wait for it, and polls read the
directory. Only functions under ``AUTOMATE_MODAL["LOCAL_MODULES"]`` may run. The GPU is recorded,
not used. A process that died without a result (killed, machine restarted) is ``preempted``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

from automate_modal.backends.base import (
    Backend,
    Done,
    Failed,
    Outcome,
    Pending,
    SpawnFailed,
    automate_kwargs,
)
from automate_modal.conf import modal_settings

CALL_PREFIX = "local-"


def work_dir() -> Path:
    configured = str(modal_settings.LOCAL_WORK_DIR or "")
    return Path(configured) if configured else Path(tempfile.gettempdir()) / "automate-modal"


def allowed(function: str) -> bool:
    return any(
        function == module or function.startswith(f"{module}.")
        for module in modal_settings.LOCAL_MODULES
    )


class LocalBackend(Backend):
    def spawn(
        self, input: Any, *, gpu: str, idempotency_key: str, callback_url: str, job_id: str
    ) -> str:
        function = self.endpoint.function_name
        if not allowed(function):
            raise SpawnFailed(
                f"{function!r} is not in AUTOMATE_MODAL['LOCAL_MODULES']; the local backend "
                "runs only functions of the modules listed there"
            )
        call_id = f"{CALL_PREFIX}{uuid.uuid4().hex}"
        call_dir = work_dir() / call_id
        call_dir.mkdir(parents=True)
        automate = automate_kwargs(
            job_id=job_id, idempotency_key=idempotency_key, callback_url=callback_url
        )
        (call_dir / "call.json").write_text(
            json.dumps({"function": function, "input": input, "automate": automate, "gpu": gpu})
        )
        with (call_dir / "output.log").open("wb") as log:
            process = subprocess.Popen(  # noqa: S603  our own runner, the function allowlisted
                [sys.executable, "-m", "automate_modal.backends.local_runner", str(call_dir)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # a signal to the worker does not reach the job
            )
        (call_dir / "pid").write_text(str(process.pid))
        return call_id

    def poll(self, call_id: str) -> Outcome:
        call_dir = self._dir(call_id)
        result_file = call_dir / "result.json"
        if result_file.exists():
            result = json.loads(result_file.read_text())
            if "error" in result:
                return Failed(result.get("kind") or "permanent", str(result["error"]))
            return Done(result.get("output"))
        if (call_dir / "cancelled").exists():
            return Failed("permanent", "cancelled")
        if _alive(int((call_dir / "pid").read_text())):
            return Pending()
        if result_file.exists():  # it finished between the two looks
            return self.poll(call_id)
        return Failed("preempted", "the local process ended without a result")

    def cancel(self, call_id: str) -> None:
        call_dir = self._dir(call_id)
        (call_dir / "cancelled").touch()
        pid = int((call_dir / "pid").read_text())
        with contextlib.suppress(ProcessLookupError):  # it ended already
            os.killpg(pid, signal.SIGTERM)

    def _dir(self, call_id: str) -> Path:
        if not call_id.startswith(CALL_PREFIX) or not call_id[len(CALL_PREFIX) :].isalnum():
            raise ValueError(f"not a local call id: {call_id!r}")
        return work_dir() / call_id


def _alive(pid: int) -> bool:
    """Whether the process runs; reaps it when it is this process's own ended child."""
    try:
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    except ChildProcessError:
        pass  # not our child (another worker started it)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return True
    return state != "Z"
