"""Functions the ``local`` backend can run out of the box (``make run``'s demo, and tests).

Each takes the job's input and the ``automate`` keyword every backend passes, as a function
deployed on Modal does.
"""

from __future__ import annotations

import time
from typing import Any


def echo(input: Any, automate: dict[str, str] | None = None) -> dict[str, Any]:
    """Returns the input, after ``input["seconds"]`` seconds when given."""
    if isinstance(input, dict) and input.get("seconds"):
        time.sleep(float(input["seconds"]))
    return {"echo": input}


def word_count(input: Any, automate: dict[str, str] | None = None) -> dict[str, Any]:
    """A small batch job: counts the words of each text in ``input["texts"]``."""
    texts = input.get("texts", []) if isinstance(input, dict) else []
    return {"counts": [len(str(text).split()) for text in texts]}


def out_of_memory(input: Any, automate: dict[str, str] | None = None) -> None:
    """Fails as a job that does not fit in the GPU's memory does."""
    raise MemoryError("CUDA out of memory (demo)")
