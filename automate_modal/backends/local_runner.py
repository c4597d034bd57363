"""The process the ``local`` backend starts for one call: ``python -m
automate_modal.backends.local_runner <call dir>``.

It reads ``call.json`` (function, input, automate), runs the function, and writes
``result.json`` (``{"output": ...}`` or ``{"error": ..., "kind": ...}``) atomically, so a poll
sees a whole result or none. When the call has a callback URL it reports there too, as a
function deployed on Modal does with :func:`automate_modal.remote.report`. It never imports
Django.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from importlib import import_module
from pathlib import Path
from typing import Any


def run(call_dir: Path) -> dict[str, Any]:
    call = json.loads((call_dir / "call.json").read_text())
    module_name, _, name = call["function"].rpartition(".")
    try:
        function = getattr(import_module(module_name), name)
        result: dict[str, Any] = {"output": function(call["input"], automate=call["automate"])}
    except MemoryError as exc:
        result = {"error": f"MemoryError: {exc}", "kind": "oom"}
    except Exception as exc:
        result = {"error": f"{type(exc).__name__}: {exc}", "kind": "permanent"}
    partial = call_dir / "result.json.partial"
    partial.write_text(json.dumps(result, default=str))
    os.replace(partial, call_dir / "result.json")
    return result


def main() -> None:
    call_dir = Path(sys.argv[1])
    result = run(call_dir)
    url = json.loads((call_dir / "call.json").read_text())["automate"].get("callback_url")
    if url:
        from automate_modal.remote import report

        # A report that does not arrive is fine: the reconcile poll reads result.json.
        with contextlib.suppress(OSError):
            report(
                url, output=result.get("output"), error=result.get("error"), kind=result.get("kind")
            )


if __name__ == "__main__":
    main()
