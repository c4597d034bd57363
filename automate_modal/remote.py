"""The Modal side of a job: report its result to the signed completion callback.

Call it at the end of a deployed function, with the ``callback_url`` the platform passed in the
``automate`` keyword argument::

    @app.function(gpu="L4")
    def transcribe(input: dict, automate: dict | None = None) -> dict:
        result = {"text": run_whisper(input["audio_url"])}
        if automate:
            report(automate["callback_url"], output=result)
        return result

The return value stays the result too: when a report does not arrive, the platform's reconcile
poll reads it from the call. Standard library only, so it runs in any container. A URL is good
for one report of one attempt before it expires.
"""

from __future__ import annotations

import json
import urllib.request
from typing import Any

__all__ = ["report"]


def report(
    url: str,
    output: Any = None,
    error: str | None = None,
    *,
    kind: str | None = None,
    timeout: float = 30.0,
) -> int:
    """POST the function's ``output`` (JSON-serialisable), or its ``error`` with a failure
    ``kind`` (``oom``, ``preempted``, ``transient``, ``permanent``), to ``url``; returns the
    HTTP status. An empty ``url`` (no callback configured) does nothing and returns 0. Raises
    ``urllib.error.HTTPError`` when the platform refuses the report (expired, forged, used)."""
    if not url:
        return 0
    body: dict[str, Any] = {"output": output}
    if error is not None:
        body = {"error": str(error), "kind": kind or "permanent"}
    if not url.lower().startswith(("https://", "http://")):
        raise ValueError("the callback URL must be http(s)")
    request = urllib.request.Request(  # noqa: S310  scheme checked above
        url,
        data=json.dumps(body, default=str).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, timeout=timeout) as response:  # noqa: S310
        return int(response.status)
