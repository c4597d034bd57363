"""The http connector against a real server on 127.0.0.1."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import pytest

from automate_core.connectors.base import ConnectorContext, ConnectorError, connector_class
from automate_core.connectors.builtin.http import HttpConnector, HttpStatusError
from automate_core.governance.egress import EgressDenied
from automate_core.testing.contracts import ConnectorContractTest
from automate_core.testing.loopback import RecordingServer, Reply, closed_port

TOKEN = "Bearer s3cret-token-0123456789"
NO_JITTER = {"max_attempts": 3, "backoff_base": 0.5, "backoff_max": 8, "jitter": 0}


class TestHttpConnectorContract(ConnectorContractTest):
    connector_class = HttpConnector
    invalid_configs = [
        {"base_url": "ftp://files.example.com"},
        {"headers": {"Authorization": "Bearer x"}},  # credentials need base_url
        {"base_url": "https://api.example.com", "headers": {"Host": "internal"}},
        {"retry": {"max_attempts": 0}},
        {"timeout": "soon"},
        {"bse_url": "https://api.example.com"},
    ]
    sample_action = "request"
    sample_params = {"url": "/ping"}
    secret_values = [TOKEN]

    @pytest.fixture(autouse=True)
    def _loopback(self, server, allow_loopback) -> None:
        self.valid_config = {"base_url": server.url, "headers": {"Authorization": TOKEN}}


def connector(server: RecordingServer, **config) -> HttpConnector:
    return HttpConnector({"base_url": server.url, **config})


def context(**overrides) -> ConnectorContext:
    return ConnectorContext(**{"idempotency_key": "exec-1:fetch", "trace_id": "t-1", **overrides})


pytestmark = pytest.mark.usefixtures("allow_loopback")


def test_is_found_by_code() -> None:
    assert connector_class("http") is HttpConnector


def test_json_response_is_parsed_and_status_returned(server) -> None:
    server.script(Reply.json({"id": 7, "tags": ["a"]}, status=201))

    result = connector(server).execute("request", {"url": "/items/7"}, context())

    assert result.status == 201
    assert result.data["status"] == 201
    assert result.data["body"] == {"id": 7, "tags": ["a"]}
    assert result.data["body_encoding"] == "json"
    assert result.data["headers"]["content-type"] == "application/json"
    assert result.metadata["attempts"] == 1


def test_text_stays_text_and_binary_comes_back_as_base64(server) -> None:
    server.script(
        Reply.text("héllo"),
        Reply(headers={"Content-Type": "image/png"}, body=b"\x89PNG\x00\xff"),
    )
    http = connector(server)

    text = http.execute("request", {"url": "/a"}, context())
    binary = http.execute("request", {"url": "/b"}, context())

    assert (text.data["body"], text.data["body_encoding"]) == ("héllo", "text")
    assert binary.data["body_encoding"] == "base64"
    assert base64.b64decode(binary.data["body"]) == b"\x89PNG\x00\xff"


def test_request_carries_method_query_json_and_merged_headers(server) -> None:
    http = connector(server, headers={"Authorization": TOKEN, "X-Team": "ops"})

    http.execute(
        "request",
        {
            "method": "post",
            "url": "/orders?source=wf",
            "query": {"page": 2, "tag": ["a", "b"]},
            "headers": {"X-Team": "billing", "Accept": "application/json"},
            "json": {"sku": "A-1", "qty": 2},
        },
        context(),
    )

    [seen] = server.received
    assert seen.method == "POST"
    assert seen.path == "/orders?source=wf&page=2&tag=a&tag=b"
    assert seen.headers["authorization"] == TOKEN
    assert seen.headers["x-team"] == "billing"
    assert seen.headers["content-type"] == "application/json"
    assert seen.json() == {"sku": "A-1", "qty": 2}


def test_raw_body_is_sent_as_given(server) -> None:
    connector(server).execute(
        "request",
        {"method": "PUT", "url": "/raw", "body": "a=1&b=2", "headers": {"Content-Type": "x/y"}},
        context(),
    )

    assert server.received[0].body == b"a=1&b=2"
    assert server.received[0].headers["content-type"] == "x/y"


def test_step_idempotency_key_and_trace_id_are_sent_and_cannot_be_overridden(server) -> None:
    connector(server).execute(
        "request",
        {"method": "POST", "url": "/pay", "headers": {"idempotency-key": "forged"}},
        context(),
    )

    headers = server.received[0].headers
    assert headers["idempotency-key"] == "exec-1:fetch"
    assert headers["x-trace-id"] == "t-1"


def test_credential_headers_in_the_response_are_redacted(server) -> None:
    server.script(
        Reply(
            headers={
                "Set-Cookie": "session=abc123secret",
                "Authorization": "Bearer echoed-token-123456",
                "X-Api-Key": "k-123456789",
                "X-Request-Id": "req-1",
            }
        )
    )

    headers = connector(server).execute("request", {"url": "/"}, context()).data["headers"]

    assert headers["set-cookie"] == "[REDACTED]"
    assert headers["authorization"] == "[REDACTED]"
    assert headers["x-api-key"] == "[REDACTED]"
    assert headers["x-request-id"] == "req-1"


def test_5xx_is_retried_with_exponential_backoff_then_succeeds(server, slept) -> None:
    server.script(Reply(status=500), Reply(status=502), Reply.json({"ok": True}))
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    result = http.execute("request", {"method": "POST", "url": "/charge"}, context())

    assert result.data["body"] == {"ok": True}
    assert result.metadata["attempts"] == 3
    assert slept == [0.5, 1.0]
    assert {seen.headers["idempotency-key"] for seen in server.received} == {"exec-1:fetch"}


def test_5xx_after_the_last_attempt_is_a_retryable_error_with_the_status(server, slept) -> None:
    server.script(*[Reply.text("busy", status=503)] * 3)
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        http.execute("request", {"url": "/"}, context())

    assert raised.value.retryable is True
    assert raised.value.status == 503
    assert raised.value.details["attempts"] == 3
    assert len(server.received) == 3


def test_dropped_connection_is_retried(server, slept) -> None:
    server.script(Reply(drop=True), Reply.text("fine"))
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    result = http.execute("request", {"url": "/"}, context())

    assert result.data["body"] == "fine"
    assert len(server.received) == 2


def test_refused_connection_is_a_retryable_error_after_the_attempts(slept) -> None:
    http = HttpConnector({"retry": {**NO_JITTER, "max_attempts": 2}})
    http.sleep = slept.append

    with pytest.raises(ConnectorError) as raised:
        http.execute("request", {"url": f"http://127.0.0.1:{closed_port()}/"}, context())

    assert raised.value.retryable is True
    assert raised.value.details["error"] == "ConnectError"
    assert raised.value.details["attempts"] == 2
    assert slept == [0.5]


def test_read_timeout_is_retried(server) -> None:
    server.script(Reply(delay=1.0), Reply.text("quick"))
    http = connector(server, retry={"backoff_base": 0})

    result = http.execute("request", {"url": "/", "timeout": 0.2}, context())

    assert result.data["body"] == "quick"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds_is_honoured(server, slept, status) -> None:
    server.script(Reply(status=status, headers={"Retry-After": "7"}), Reply.text("ok"))
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    http.execute("request", {"url": "/"}, context())

    assert slept == [7.0]


def test_retry_after_on_other_statuses_is_ignored(server, slept) -> None:
    server.script(Reply(status=500, headers={"Retry-After": "7"}), Reply.text("ok"))
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    http.execute("request", {"url": "/"}, context())

    assert slept == [0.5]


def test_retry_after_http_date_is_honoured(server, slept) -> None:
    when = datetime.now(UTC) + timedelta(seconds=20)
    server.script(Reply(status=429, headers={"Retry-After": format_datetime(when, usegmt=True)}))
    http = connector(server, retry=NO_JITTER)
    http.sleep = slept.append

    http.execute("request", {"url": "/"}, context())

    assert len(slept) == 1 and 15 <= slept[0] <= 20


def test_retry_after_longer_than_allowed_is_left_to_the_runtime(server, slept) -> None:
    server.script(Reply(status=429, headers={"Retry-After": "120"}))
    http = connector(server, retry={"max_retry_after": 30})
    http.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        http.execute("request", {"url": "/"}, context())

    assert (raised.value.retryable, raised.value.retry_after) == (True, 120.0)
    assert slept == []
    assert len(server.received) == 1


def test_no_retry_waits_past_the_steps_deadline(server, slept) -> None:
    server.script(Reply(status=503, headers={"Retry-After": "10"}))
    http = connector(server)
    http.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        http.execute("request", {"url": "/"}, context(timeout_seconds=5))

    assert raised.value.retryable and slept == []


def test_4xx_is_not_retried_and_its_body_is_scrubbed_of_secrets(server, slept) -> None:
    server.script(Reply.text(f"token {TOKEN} is not allowed here", status=403))
    http = connector(server, headers={"Authorization": TOKEN})
    http.sleep = slept.append

    with pytest.raises(HttpStatusError) as raised:
        http.execute("request", {"url": "/admin"}, context())

    error = raised.value
    assert (error.status, error.retryable) == (403, False)
    assert error.details["status"] == 403
    assert "s3cret-token" not in str(error) + repr(error.details)
    assert "not allowed here" in error.details["body"]
    assert len(server.received) == 1 and slept == []


def test_url_outside_base_url_is_refused_before_sending(server) -> None:
    http = HttpConnector({"base_url": f"{server.url}/api", "headers": {"Authorization": TOKEN}})

    for url in ("http://evil.example/steal", f"{server.url}/admin", "../admin", "/../admin"):
        with pytest.raises(ConnectorError, match="outside the connector's base_url") as raised:
            http.execute("request", {"url": url}, context())
        assert raised.value.retryable is False

    http.execute("request", {"url": f"{server.url}/api/v2/ok"}, context())
    http.execute("request", {"url": "v2/ok"}, context())
    assert [seen.path for seen in server.received] == ["/api/v2/ok", "/api/v2/ok"]


def test_loopback_needs_an_egress_exemption(settings, server) -> None:
    settings.AUTOMATE = {}

    with pytest.raises(EgressDenied, match="loopback"):
        connector(server).execute("request", {"url": "/"}, context())

    assert server.received == []


def test_the_tenants_egress_allowlist_applies(server, tenant) -> None:
    tenant.egress_allowlist = ["api.partner.example"]
    tenant.save()

    with pytest.raises(EgressDenied, match="tenant's egress allowlist"):
        connector(server).execute("request", {"url": "/"}, context(tenant_id=tenant.pk))

    assert server.received == []


def test_a_tenant_that_does_not_exist_is_refused(server, db) -> None:
    with pytest.raises(ConnectorError, match="tenant"):
        connector(server).execute(
            "request", {"url": "/"}, context(tenant_id="00000000-0000-0000-0000-000000000000")
        )


def test_redirects_are_returned_unless_following_is_configured(server) -> None:
    server.respond = lambda seen: (
        Reply(status=302, headers={"Location": "/final"}) if seen.path == "/start" else Reply()
    )

    returned = connector(server).execute("request", {"url": "/start"}, context())
    followed = connector(server, follow_redirects=True).execute(
        "request", {"url": "/start"}, context()
    )

    assert returned.status == 302
    assert returned.data["headers"]["location"] == "/final"
    assert followed.status == 200
    assert [seen.path for seen in server.received] == ["/start", "/start", "/final"]


def test_a_response_over_the_size_limit_is_refused(server) -> None:
    server.script(Reply.text("x" * 5000))

    with pytest.raises(ConnectorError, match="larger than 1000 bytes") as raised:
        connector(server, max_response_bytes=1000).execute("request", {"url": "/"}, context())

    assert raised.value.retryable is False


@pytest.mark.parametrize(
    "params",
    [
        {"url": "/", "json": {}, "body": "x"},
        {"url": "/", "data": "typo"},
        {"url": "/", "method": "TRACE"},
        {"url": "/", "headers": {"Transfer-Encoding": "chunked"}},
        {"url": "/", "headers": {"X-Evil": "a\r\nInjected: 1"}},
        {"url": "/", "json": float("nan")},
        {"url": "/", "query": {"filter": {"nested": 1}}},
        {},
    ],
)
def test_invalid_params_are_not_retryable_and_send_nothing(server, params) -> None:
    with pytest.raises(ConnectorError, match="Invalid params") as raised:
        connector(server).execute("request", params, context())

    assert raised.value.retryable is False
    assert server.received == []


def test_an_unresolved_secret_ref_is_reported_not_sent(server) -> None:
    http = connector(server, headers={"Authorization": {"$secret": "API_TOKEN"}})

    with pytest.raises(ConnectorError, match="still a SecretRef"):
        http.execute("request", {"url": "/"}, context())

    assert server.received == []


def test_secret_refs_are_valid_in_a_saved_config() -> None:
    config = {"base_url": "$secret:PARTNER_URL", "headers": {"Authorization": "$secret:TOKEN"}}

    assert HttpConnector.validate_config(config) == []
