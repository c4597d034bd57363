from automate_core.connectors.base import ConnectorContext, connector_class
from automate_core.connectors.builtin.echo import EchoConnector
from automate_core.testing.contracts import ConnectorContractTest


class TestEchoConnectorContract(ConnectorContractTest):
    connector_class = EchoConnector
    valid_config = {"label": "dry run"}
    invalid_configs = [{"url": "https://x"}]
    sample_action = "echo"
    sample_params = {"a": 1}


def test_echo_returns_params_and_the_idempotency_key():
    result = EchoConnector({}).execute("echo", {"a": 1}, ConnectorContext(idempotency_key="e:s"))
    assert result.data == {"params": {"a": 1}, "idempotency_key": "e:s"}


def test_registry_finds_built_ins_by_code():
    assert connector_class("echo") is EchoConnector
