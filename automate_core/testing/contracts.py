"""Contract tests for plugins. Subclass, fill in the class attributes, and pytest runs them.

.. code-block:: python

    class TestMyConnector(ConnectorContractTest):
        connector_class = MyConnector
        valid_config = {"base_url": "https://api.example.com", "token": "x"}
        invalid_configs = [{}]
        sample_action, sample_params = "ping", {}
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from automate_core import plugins
from automate_core.connectors.base import (
    ConnectorAdapter,
    ConnectorConfigError,
    ConnectorContext,
    ConnectorError,
    ConnectorResult,
)


class ConnectorContractTest:
    connector_class: ClassVar[type[ConnectorAdapter]]
    valid_config: ClassVar[Mapping[str, Any]] = {}
    invalid_configs: ClassVar[list[Mapping[str, Any]]] = []
    sample_action: ClassVar[str]
    sample_params: ClassVar[Mapping[str, Any]] = {}
    # Values of valid_config that must never show in repr() or results (secrets).
    secret_values: ClassVar[list[str]] = []

    def make_context(self, **overrides: Any) -> ConnectorContext:
        values: dict[str, Any] = {"idempotency_key": "exec-1:step-1", "trace_id": "trace-contract"}
        values.update(overrides)
        return ConnectorContext(**values)

    def make_connector(self) -> ConnectorAdapter:
        return self.connector_class(self.valid_config)

    def test_declares_code_name_and_actions(self) -> None:
        cls = self.connector_class
        assert cls.code and cls.name
        assert self.sample_action in cls.actions

    def test_is_registered_under_its_code(self) -> None:
        plugins.refresh()
        assert plugins.load("connectors", self.connector_class.code) is self.connector_class

    def test_valid_config_has_no_problems(self) -> None:
        assert self.connector_class.validate_config(self.valid_config) == []

    def test_invalid_configs_are_reported_and_refused(self) -> None:
        for config in self.invalid_configs:
            problems = self.connector_class.validate_config(config)
            assert problems and all(isinstance(p, str) and p for p in problems), config
            with pytest.raises(ConnectorConfigError):
                self.connector_class(config)

    def test_sample_action_returns_a_result(self) -> None:
        result = self.make_connector().execute(
            self.sample_action, self.sample_params, self.make_context()
        )
        assert isinstance(result, ConnectorResult)

    def test_unknown_action_is_a_connector_error(self) -> None:
        with pytest.raises(ConnectorError):
            self.make_connector().execute("no-such-action", {}, self.make_context())

    def test_repr_does_not_show_secrets(self) -> None:
        text = repr(self.make_connector())
        for secret in self.secret_values:
            assert secret not in text
