"""Signed outgoing webhooks against a real receiver on 127.0.0.1, and verify_signature both
ways: what the connector signs verifies, and what was tampered with, replayed or signed with
another secret does not."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from automate_core.connectors.base import ConnectorContext, ConnectorError, connector_class
from automate_core.connectors.builtin.http import HttpStatusError
from automate_core.connectors.builtin.webhook import (
    WebhookConnector,
    signature_header,
    verify_signature,
)
from automate_core.testing.contracts import ConnectorContractTest
from automate_core.testing.loopback import RecordingServer, Reply

SECRET = "whsec-test-0123456789abcdef"
NOW = 1_700_000_000


class TestWebhookConnectorContract(ConnectorContractTest):
    connector_class = WebhookConnector
    invalid_configs = [
        {},
        {"url": "https://hooks.example.com/in"},  # no secret
        {"secret": SECRET},  # no url
        {"url": "file:///etc/passwd", "secret": SECRET},
        {"url": "https://hooks.example.com/in", "secret": ""},
        {"url": "https://hooks.example.com/in", "secret": {"$secret": "bad name!"}},
    ]
    sample_action = "send"
    sample_params = {"event": "order.paid", "payload": {"id": 1}}
    secret_values = [SECRET]

    @pytest.fixture(autouse=True)
    def _loopback(self, server, allow_loopback) -> None:
        self.valid_config = {"url": f"{server.url}/hooks", "secret": SECRET}


pytestmark = pytest.mark.usefixtures("allow_loopback")


def webhook(server: RecordingServer, **config) -> WebhookConnector:
    connector = WebhookConnector({"url": f"{server.url}/hooks", "secret": SECRET, **config})
    connector.clock = lambda: NOW
    return connector


def context() -> ConnectorContext:
    return ConnectorContext(idempotency_key="exec-9:notify", trace_id="t-9")


def test_is_found_by_code() -> None:
    assert connector_class("webhook") is WebhookConnector


def test_delivery_is_a_signed_json_post_the_receiver_can_verify(server) -> None:
    result = webhook(server).execute(
        "send", {"event": "order.paid", "payload": {"order": 42}}, context()
    )

    [seen] = server.received
    assert (seen.method, seen.path) == ("POST", "/hooks")
    assert seen.json() == {"id": "exec-9:notify", "event": "order.paid", "data": {"order": 42}}
    assert seen.headers["content-type"] == "application/json"
    assert seen.headers["x-automate-event"] == "order.paid"
    assert seen.headers["idempotency-key"] == "exec-9:notify"
    assert seen.headers["x-automate-signature"].startswith(f"t={NOW},v1=")
    assert verify_signature(SECRET, seen.headers["x-automate-signature"], seen.body, now=NOW)
    assert result.status == 200


def test_signature_is_hmac_sha256_over_timestamp_dot_body(server) -> None:
    webhook(server).execute("send", {"event": "ping"}, context())

    seen = server.received[0]
    expected = hmac.new(SECRET.encode(), f"{NOW}.".encode() + seen.body, hashlib.sha256)
    assert seen.headers["x-automate-signature"] == f"t={NOW},v1={expected.hexdigest()}"


def test_each_retry_is_signed_again_with_a_fresh_timestamp(server, slept) -> None:
    server.script(Reply(status=503), Reply(status=200))
    connector = webhook(server, retry={"jitter": 0})
    times = iter([NOW, NOW + 40])
    connector.clock = lambda: next(times)
    connector.sleep = slept.append

    connector.execute("send", {"event": "ping"}, context())

    first, second = (seen.headers["x-automate-signature"] for seen in server.received)
    assert first.startswith(f"t={NOW},") and second.startswith(f"t={NOW + 40},")
    assert verify_signature(SECRET, second, server.received[1].body, now=NOW + 40)
    assert server.received[0].body == server.received[1].body


def test_receiver_rejection_is_not_retried(server, slept) -> None:
    server.script(Reply.text("unknown endpoint", status=410))
    connector = webhook(server)
    connector.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        connector.execute("send", {"event": "ping"}, context())

    assert (raised.value.status, raised.value.retryable) == (410, False)
    assert len(server.received) == 1 and slept == []


def test_receiver_errors_after_the_last_attempt_are_retryable(server, slept) -> None:
    server.script(*[Reply(status=500)] * 3)
    connector = webhook(server)
    connector.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        connector.execute("send", {"event": "ping"}, context())

    assert raised.value.retryable is True
    assert len(server.received) == 3


def test_a_redirect_is_a_failed_delivery(server) -> None:
    server.script(Reply(status=301, headers={"Location": "/elsewhere"}))

    with pytest.raises(HttpStatusError) as raised:
        webhook(server).execute("send", {"event": "ping"}, context())

    assert raised.value.status == 301
    assert [seen.path for seen in server.received] == ["/hooks"]


def test_the_secret_never_shows_in_an_error(server) -> None:
    server.script(Reply.text(f"bad signature, expected key {SECRET}", status=400))

    with pytest.raises(ConnectorError) as raised:
        webhook(server).execute("send", {"event": "ping"}, context())

    assert SECRET not in str(raised.value) + json.dumps(raised.value.details)


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"event": ""},
        {"event": "a\nb"},
        {"event": "x", "extra": 1},
        {"event": "x", "payload": {1j}},
    ],
)
def test_invalid_params_send_nothing(server, params) -> None:
    with pytest.raises(ConnectorError, match="Invalid params"):
        webhook(server).execute("send", params, context())

    assert server.received == []


# --- verify_signature -------------------------------------------------------------------------

BODY = b'{"id":"e:s","event":"ping","data":{}}'


def test_verify_accepts_a_fresh_signature() -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)

    assert verify_signature(SECRET, header, BODY, now=NOW + 299)
    assert verify_signature(SECRET.encode(), header, BODY.decode(), now=NOW)


@pytest.mark.parametrize(
    "secret, body",
    [
        ("another-secret-0123456789", BODY),
        (SECRET, BODY.replace(b"ping", b"pong")),
        (SECRET, BODY + b" "),
    ],
)
def test_verify_refuses_another_secret_or_a_changed_body(secret, body) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)

    assert not verify_signature(secret, header, body, now=NOW)


@pytest.mark.parametrize("skew", [-301, 301, 86_400])
def test_verify_refuses_timestamps_outside_the_tolerance(skew) -> None:
    header = signature_header(SECRET, BODY, timestamp=NOW)

    assert not verify_signature(SECRET, header, BODY, now=NOW + skew)
    assert verify_signature(SECRET, header, BODY, tolerance=None, now=NOW + skew)


def test_verify_refuses_a_replayed_signature_under_a_new_timestamp() -> None:
    old = signature_header(SECRET, BODY, timestamp=NOW - 3600)
    replayed = old.replace(f"t={NOW - 3600}", f"t={NOW}")

    assert not verify_signature(SECRET, replayed, BODY, now=NOW)


@pytest.mark.parametrize(
    "header",
    [
        None,
        "",
        "v1=abc",
        f"t={NOW}",
        f"t=soon,v1={'0' * 64}",
        f"t={NOW},t={NOW},v1={'0' * 64}",
        f"t={NOW},v1=é",
        "garbage",
    ],
)
def test_verify_refuses_malformed_headers(header) -> None:
    assert not verify_signature(SECRET, header, BODY, now=NOW)


def test_verify_accepts_any_of_several_v1_signatures() -> None:
    good = signature_header(SECRET, BODY, timestamp=NOW).split("v1=")[1]
    header = f"t={NOW},v1={'0' * 64},v1={good}"

    assert verify_signature(SECRET, header, BODY, now=NOW)
