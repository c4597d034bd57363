"""The ConnectorAdapter contract.

A connector is a small class registered in the entry-point group ``django_automate.connectors``
under its ``code``. The runtime builds it with a resolved config (SecretRefs already replaced)
and calls ``execute(action, params, context)``. ``context.idempotency_key`` is stable across
retries of the same step: connectors pass it to the remote side (for example as an
``Idempotency-Key`` header) so that a retried step does not repeat the side effect.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from automate_core import plugins
from automate_core.errors import AutomateError


class ConnectorError(AutomateError):
    """The call failed. ``retryable`` tells the runtime whether another attempt may succeed."""

    status_code = 502
    code = "connector_error"

    def __init__(self, message: str, *, retryable: bool = False, details: Any = None) -> None:
        self.retryable = retryable
        super().__init__(message, details=details)


class ConnectorConfigError(AutomateError):
    code = "connector_config_invalid"


@dataclass(frozen=True)
class ConnectorContext:
    """What the runtime tells a connector about the call it is making."""

    idempotency_key: str
    trace_id: str | None = None
    tenant_id: Any = None
    execution_id: Any = None
    step_id: str | None = None
    timeout_seconds: float = 30.0


@dataclass(frozen=True)
class ConnectorResult:
    data: Any = None
    status: int | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)


class ConnectorAdapter:
    """Base class of every connector; subclasses set ``code``, ``name`` and ``actions``."""

    code: ClassVar[str]
    name: ClassVar[str]
    actions: ClassVar[Mapping[str, str]] = {}  # action -> one-line description

    def __init__(self, config: Mapping[str, Any]) -> None:
        problems = self.validate_config(config)
        if problems:
            raise ConnectorConfigError(
                f"Invalid {self.code} connector config: {'; '.join(problems)}",
                details={"problems": problems},
            )
        self.config = dict(config)

    def __repr__(self) -> str:  # never show config values: they may hold resolved secrets
        return f"<{type(self).__name__} {self.code}>"

    @classmethod
    def validate_config(cls, config: Mapping[str, Any]) -> list[str]:
        """Problems with ``config``, one readable sentence each; empty when it is valid."""
        return []

    def execute(
        self, action: str, params: Mapping[str, Any], context: ConnectorContext
    ) -> ConnectorResult:
        raise NotImplementedError

    def check_action(self, action: str) -> None:
        if action not in self.actions:
            choices = ", ".join(sorted(self.actions))
            raise ConnectorError(f"{self.code} has no action {action!r}; available: {choices}")


def connector_class(code: str) -> type[ConnectorAdapter]:
    """The installed connector registered as ``code`` (PluginNotFound names the choices)."""
    found: type[ConnectorAdapter] = plugins.load("connectors", code)
    return found
