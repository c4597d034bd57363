"""Fixtures of the LLM gateway tests. The wire servers and the providers pointed at them
(``wire``, ``make_wire_provider``, ``wire_model``...) come from the pytest plugin
:mod:`automate_llm.testing.fixtures`, registered in ``tests/conftest.py``.

* ``sleeps`` / ``gateway``: a gateway whose backoff waits are recorded, not slept.
"""

from __future__ import annotations

import pytest

from automate_llm.gateway import Gateway


@pytest.fixture
def sleeps() -> list[float]:
    """The backoff waits the ``gateway`` fixture asked for, in order."""
    return []


@pytest.fixture
def gateway(sleeps: list[float]) -> Gateway:
    return Gateway(sleep=sleeps.append)
