"""Fixtures for connector tests: a recording loopback server, and the egress exemption that
lets connectors reach it (loopback is refused by default, as in production)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from automate_core.testing.loopback import RecordingServer


@pytest.fixture
def allow_loopback(settings) -> None:
    settings.AUTOMATE = {
        **(getattr(settings, "AUTOMATE", None) or {}),
        "EGRESS_ALLOW_PRIVATE": ["127.0.0.1"],
    }


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as running:
        yield running


@pytest.fixture
def slept() -> list[float]:
    """Collects the waits a connector asks for; assign ``connector.sleep = slept.append``."""
    return []
