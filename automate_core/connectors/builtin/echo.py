"""A connector with no side effect: returns its params. For dry runs, tests and wiring checks."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from automate_core.connectors.base import ConnectorAdapter, ConnectorContext, ConnectorResult


class EchoConnector(ConnectorAdapter):
    code = "echo"
    name = "Echo"
    actions = {"echo": "Return the params unchanged, with the idempotency key."}

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        unknown = set(config) - {"label"}
        return [f"unknown option {key!r}" for key in sorted(unknown)]

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        self.check_action(action)
        return ConnectorResult(
            data={"params": dict(params), "idempotency_key": context.idempotency_key}
        )
