"""The slack connector against a fake Slack on 127.0.0.1 that speaks Slack's wire format: the
Web API checks the bearer token and answers ``{"ok": ..., "error": ...}`` JSON; the incoming
webhook answers ``ok`` or a plain-text error code."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest

from automate_core.connectors.base import ConnectorContext, ConnectorError, connector_class
from automate_core.connectors.builtin.slack import SlackAPIError, SlackConnector
from automate_core.governance.egress import EgressDenied
from automate_core.testing.contracts import ConnectorContractTest
from automate_core.testing.loopback import Received, RecordingServer, Reply

BOT_TOKEN = "xoxb-1111-2222-fakebottoken"
HOOK_PATH = "/services/T000/B000/hooksecret123"


def fake_slack(seen: Received) -> Reply:
    """Slack's answers, by endpoint."""
    if seen.path == HOOK_PATH:
        message = seen.json()
        if not (message.get("text") or message.get("blocks")):
            return Reply.text("invalid_payload", status=400)
        return Reply.text("ok")
    if seen.path.startswith("/services/"):
        return Reply.text("no_service", status=404)
    if seen.path != "/api/chat.postMessage":
        return Reply.json({"ok": False, "error": "unknown_method"}, status=404)
    if seen.headers.get("authorization") != f"Bearer {BOT_TOKEN}":
        return Reply.json({"ok": False, "error": "invalid_auth"})
    message = seen.json()
    channel = message.get("channel")
    if channel == "C-missing":
        return Reply.json({"ok": False, "error": "channel_not_found"})
    if channel == "C-scopes":
        return Reply.json(
            {
                "ok": False,
                "error": "missing_scope",
                "needed": "chat:write",
                "provided": "users:read",
            }
        )
    if channel == "C-busy":
        return Reply.json({"ok": False, "error": "ratelimited"})
    return Reply.json(
        {
            "ok": True,
            "channel": channel,
            "ts": "1700000000.000100",
            "message": {"type": "message", "text": message.get("text", ""), "bot_id": "B1"},
        }
    )


@pytest.fixture
def slack_server() -> Iterator[RecordingServer]:
    with RecordingServer(fake_slack) as running:
        yield running


class TestSlackConnectorContract(ConnectorContractTest):
    connector_class = SlackConnector
    invalid_configs = [
        {},
        {"bot_token": ""},
        {"webhook_url": "not a url"},
        {"bot_token": BOT_TOKEN, "base_url": "gopher://slack.com"},
        {"bot_token": BOT_TOKEN, "channel": "C1"},
    ]
    sample_action = "post_message"
    sample_params = {"channel": "C123", "text": "Deployed"}
    secret_values = [BOT_TOKEN, HOOK_PATH]

    @pytest.fixture(autouse=True)
    def _fake_slack(self, slack_server, allow_loopback) -> None:
        self.valid_config = {
            "bot_token": BOT_TOKEN,
            "base_url": f"{slack_server.url}/api",
            "webhook_url": f"{slack_server.url}{HOOK_PATH}",
        }


pytestmark = pytest.mark.usefixtures("allow_loopback")


def slack(server: RecordingServer, **config) -> SlackConnector:
    values = {
        "bot_token": BOT_TOKEN,
        "base_url": f"{server.url}/api",
        "webhook_url": f"{server.url}{HOOK_PATH}",
        **config,
    }
    return SlackConnector({key: value for key, value in values.items() if value is not None})


def context() -> ConnectorContext:
    return ConnectorContext(idempotency_key="exec-3:announce", trace_id="t-3")


def test_is_found_by_code() -> None:
    assert connector_class("slack") is SlackConnector


def test_post_message_sends_the_bot_token_and_returns_slacks_answer(slack_server) -> None:
    result = slack(slack_server).execute(
        "post_message", {"channel": "C123", "text": "Deployed", "thread_ts": "1.2"}, context()
    )

    [seen] = slack_server.received
    assert (seen.method, seen.path) == ("POST", "/api/chat.postMessage")
    assert seen.headers["authorization"] == f"Bearer {BOT_TOKEN}"
    assert seen.headers["content-type"] == "application/json; charset=utf-8"
    assert seen.json() == {"channel": "C123", "text": "Deployed", "thread_ts": "1.2"}
    assert result.data["ok"] is True
    assert (result.data["channel"], result.data["ts"]) == ("C123", "1700000000.000100")


def test_a_wrong_token_is_invalid_auth_and_not_retryable(slack_server) -> None:
    with pytest.raises(SlackAPIError) as raised:
        slack(slack_server, bot_token="xoxb-wrong-token-000").execute(
            "post_message", {"channel": "C123", "text": "hi"}, context()
        )

    assert (raised.value.error, raised.value.retryable) == ("invalid_auth", False)
    assert raised.value.details["error"] == "invalid_auth"


def test_slack_error_codes_reach_the_error(slack_server) -> None:
    connector = slack(slack_server)

    with pytest.raises(SlackAPIError, match="channel_not_found") as missing:
        connector.execute("post_message", {"channel": "C-missing", "text": "hi"}, context())
    with pytest.raises(SlackAPIError) as scopes:
        connector.execute("post_message", {"channel": "C-scopes", "text": "hi"}, context())

    assert missing.value.retryable is False
    assert scopes.value.error == "missing_scope"
    assert scopes.value.details["needed"] == "chat:write"


def test_ok_false_ratelimited_is_retryable(slack_server) -> None:
    with pytest.raises(SlackAPIError) as raised:
        slack(slack_server).execute("post_message", {"channel": "C-busy", "text": "hi"}, context())

    assert (raised.value.error, raised.value.retryable) == ("ratelimited", True)


def test_http_429_waits_for_retry_after_then_posts(slack_server, slept) -> None:
    slack_server.script(
        Reply.json({"ok": False, "error": "ratelimited"}, status=429, headers={"Retry-After": "3"})
    )
    connector = slack(slack_server)
    connector.sleep = slept.append

    result = connector.execute("post_message", {"channel": "C123", "text": "hi"}, context())

    assert result.data["ok"] is True
    assert slept == [3.0]
    assert len(slack_server.received) == 2


def test_http_429_beyond_the_retries_is_a_retryable_ratelimited_error(slack_server, slept) -> None:
    slack_server.script(*[Reply(status=429, headers={"Retry-After": "1"})] * 2)
    connector = slack(slack_server, retry={"max_attempts": 2})
    connector.sleep = slept.append

    with pytest.raises(SlackAPIError) as raised:
        connector.execute("post_message", {"channel": "C123", "text": "hi"}, context())

    error = raised.value
    assert (error.error, error.retryable, error.status, error.retry_after) == (
        "ratelimited",
        True,
        429,
        1.0,
    )


def test_webhook_posts_the_message_to_the_incoming_webhook(slack_server) -> None:
    result = slack(slack_server, bot_token=None).execute(
        "webhook", {"text": "Build green", "blocks": [{"type": "divider"}]}, context()
    )

    [seen] = slack_server.received
    assert seen.path == HOOK_PATH
    assert "authorization" not in seen.headers
    assert seen.json() == {"text": "Build green", "blocks": [{"type": "divider"}]}
    assert (result.status, result.data) == (200, {"ok": True})


def test_webhook_text_errors_become_slack_error_codes(slack_server) -> None:
    gone = slack(slack_server, webhook_url=f"{slack_server.url}/services/T0/B0/revoked")

    with pytest.raises(SlackAPIError) as invalid:
        slack(slack_server).execute("webhook", {"attachments": [{"x": 1}]}, context())
    with pytest.raises(SlackAPIError) as missing:
        gone.execute("webhook", {"text": "hi"}, context())

    assert (invalid.value.error, invalid.value.status) == ("invalid_payload", 400)
    assert (missing.value.error, missing.value.retryable) == ("no_service", False)


def test_webhook_5xx_is_retried(slack_server, slept) -> None:
    slack_server.script(Reply.text("rollup_error", status=500))
    connector = slack(slack_server)
    connector.sleep = slept.append

    assert connector.execute("webhook", {"text": "hi"}, context()).data == {"ok": True}
    assert len(slack_server.received) == 2


def test_an_action_without_its_credential_is_a_config_error(slack_server) -> None:
    with pytest.raises(ConnectorError, match="needs bot_token"):
        slack(slack_server, bot_token=None).execute(
            "post_message", {"channel": "C1", "text": "hi"}, context()
        )
    with pytest.raises(ConnectorError, match="needs webhook_url"):
        slack(slack_server, webhook_url=None).execute("webhook", {"text": "hi"}, context())

    assert slack_server.received == []


@pytest.mark.parametrize(
    "action, params",
    [
        ("post_message", {"text": "no channel"}),
        ("post_message", {"channel": "C1"}),
        ("webhook", {}),
    ],
)
def test_invalid_messages_send_nothing(slack_server, action, params) -> None:
    with pytest.raises(ConnectorError, match="Invalid params"):
        slack(slack_server).execute(action, params, context())

    assert slack_server.received == []


def test_credentials_never_show_in_errors(slack_server) -> None:
    slack_server.script(
        Reply.json({"ok": False, "error": "invalid_auth", "warning": f"token {BOT_TOKEN}"})
    )

    with pytest.raises(SlackAPIError) as raised:
        slack(slack_server).execute("post_message", {"channel": "C1", "text": "hi"}, context())

    text = str(raised.value) + json.dumps(raised.value.details)
    assert BOT_TOKEN not in text and HOOK_PATH not in text


def test_the_default_web_api_is_slack_com_through_the_egress_policy(settings) -> None:
    settings.AUTOMATE = {"EGRESS_ALLOWLIST": ["api.partner.example"]}
    connector = SlackConnector({"bot_token": BOT_TOKEN})

    with pytest.raises(EgressDenied, match=r"slack\.com is not in"):
        connector.execute("post_message", {"channel": "C1", "text": "hi"}, context())
