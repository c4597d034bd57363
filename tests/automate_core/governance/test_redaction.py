"""The redactor: sensitive keys, credential-shaped text, registered values, the log filter."""

from __future__ import annotations

import asyncio
import copy
import io
import logging
import threading
from collections import namedtuple
from dataclasses import dataclass

import pytest
from django.test import override_settings

from automate_core.governance.redaction import (
    REDACTED,
    RedactingLogFilter,
    current_secret_values,
    is_sensitive_key,
    redact,
    redact_text,
    register_secret_value,
    secret_scope,
)


@pytest.fixture(autouse=True)
def isolated_secret_values():
    """Values registered outside a scope last for the whole context: keep tests apart."""
    with secret_scope():
        yield


# -- which keys are sensitive ------------------------------------------------------------------


@pytest.mark.parametrize(
    "name",
    [
        "password", "PASSWORD", "Passwd", "pwd", "passphrase", "db_password", "newPassword",
        "password2", "password_hash", "password_confirm",
        "token", "access_token", "refresh_token", "accessToken", "id_token", "csrf_token",
        "secret", "client_secret", "clientSecret", "webhook-secret", "secret_value",
        "key", "api_key", "apikey", "API-KEY", "X-Api-Key", "x_api_key", "apiKey", "APIKey",
        "stripe_api_key", "STRIPE_API_KEY", "stripeApiKey", "stripeapikey", "private_key",
        "privateKey", "signing_key", "aws_secret_access_key",
        "authorization", "Authorization", "Proxy-Authorization", "basic_auth",
        "cookie", "Cookie", "set-cookie", "Set-Cookie", "set_cookie", "cookies",
        "credentials", "credential", "secrets",
    ],
)  # fmt: skip
def test_credential_key_names_are_sensitive(name):
    assert is_sensitive_key(name)


@pytest.mark.parametrize(
    "name",
    [
        "keyword", "keywords", "monkey", "turkey", "hockey", "keyboard", "keys",
        "max_tokens", "prompt_tokens", "completion_tokens", "tokens", "token_count",
        "tokenizer", "token_type", "tokenize", "passage", "passport_country", "compass",
        "secret_name", "secret_ref", "key_id", "api_key_id", "key_prefix", "prefix",
        "idempotency_key", "idempotencyKey", "cache_key", "sort_key", "primary_key",
        "public_key", "page_token", "next_page_token", "eos_token", "pad_token",
        "authorization_url", "token_url", "auth_method", "author", "authority", "oauth",
        "secretary", "value", "hash", "name", "email", "",
    ],
)  # fmt: skip
def test_ordinary_key_names_are_not_sensitive(name):
    assert not is_sensitive_key(name)


# -- structures --------------------------------------------------------------------------------


def test_values_under_sensitive_keys_are_hidden_at_any_depth():
    payload = {
        "user": "bob",
        "password": "hunter2",
        "request": {
            "headers": {"Authorization": "Basic Ym9iOmh1bnRlcjI=", "Accept": "text/html"},
            "items": [{"api_key": 1234567, "name": "first"}, ("tuple", {"client_secret": "x"})],
        },
    }

    assert redact(payload) == {
        "user": "bob",
        "password": REDACTED,
        "request": {
            "headers": {"Authorization": REDACTED, "Accept": "text/html"},
            "items": [
                {"api_key": REDACTED, "name": "first"},
                ("tuple", {"client_secret": REDACTED}),
            ],
        },
    }


def test_a_whole_container_under_a_sensitive_key_is_hidden():
    assert redact({"credentials": {"username": "bob", "password": "x"}}) == {
        "credentials": REDACTED
    }


def test_redaction_never_mutates_its_input():
    payload = {
        "password": "hunter2",
        "nested": [{"token": "abc", "text": "Bearer abcdefghij0123456789"}],
        "pair": ("sk-abcdefghijklmnopqrstuvwxyz", 1),
    }
    before = copy.deepcopy(payload)

    result = redact(payload)

    assert payload == before
    assert result is not payload
    assert result["nested"] is not payload["nested"]


def test_empty_and_boolean_values_stay_visible_because_they_reveal_nothing():
    assert redact({"password": None, "token": "", "api_key": False, "secrets": {}}) == {
        "password": None,
        "token": "",
        "api_key": False,
        "secrets": {},
    }


def test_secret_refs_stay_visible_under_sensitive_keys():
    config = {"api_key": {"$secret": "STRIPE_KEY"}, "token": "$secret:GITHUB_TOKEN"}
    assert redact(config) == config


def test_secret_refs_stay_visible_anywhere():
    config = {"headers": {"X-Custom": "$secret:CUSTOM_HEADER"}, "list": [{"$secret": "AUTH"}]}
    assert redact(config) == config
    assert redact_text("resolving $secret:STRIPE_KEY") == "resolving $secret:STRIPE_KEY"


def test_a_credential_pasted_as_a_secret_name_is_still_hidden():
    pasted = "sk-proj-abcdefghijklmnopqrstuvwxyz0123"
    assert redact({"api_key": {"$secret": pasted}, "token": f"$secret:{pasted}"}) == {
        "api_key": {"$secret": REDACTED},
        "token": f"$secret:{REDACTED}",
    }


def test_named_tuples_sets_and_bytes_keep_their_types():
    Pair = namedtuple("Pair", "label value")
    result = redact(
        {
            "pair": Pair("k", "sk-abcdefghijklmnopqrstuvwxyz"),
            "set": {"ghp_abcdefghijklmnopqrstuvwxyz0123456789"},
            "raw": b"Authorization: Bearer abcdefghij0123456789",
        }
    )
    assert result["pair"] == Pair("k", REDACTED)
    assert result["set"] == {REDACTED}
    assert result["raw"] == b"Authorization: [REDACTED]"


def test_dataclass_fields_are_redacted_in_a_copy():
    @dataclass(frozen=True)
    class ProviderCall:
        model: str
        api_key: str
        prompt: str

    call = ProviderCall("gpt", "abc123", "use token=s3cr3t please")

    assert redact(call) == ProviderCall("gpt", REDACTED, "use token=[REDACTED] please")
    assert call.api_key == "abc123"


def test_cyclic_structures_terminate():
    loop: list = ["password=hunter2"]
    loop.append(loop)

    result = redact(loop)

    assert result[0] == "password=[REDACTED]"


def test_numbers_and_other_objects_pass_through():
    marker = object()
    assert redact([1, 2.5, True, None, marker]) == [1, 2.5, True, None, marker]


# -- credential-shaped text --------------------------------------------------------------------

CREDENTIALS = {
    "bearer": "Bearer eyJraWQiOiJrMSIsImFsZyI6IlJTMjU2In0abc123",
    "bearer_opaque": "bearer 2YotnFZFEjr1zCsicMWpAA",
    "openai": "sk-abcdefghijklmnopqrstuvwxyz0123456789ABCD",
    "openai_project": "sk-proj-Ab3dEfGh1jKlMn0pQrStUvWxYz-_0123456789",
    "anthropic": "sk-ant-api03-Ab3dEfGh1jKlMn0pQrStUvWxYz0123456789-_AbCdEf",
    "github_classic": "ghp_16C7e42F292c6912E7710c838347Ae178B4a",
    "github_fine_grained": "github_pat_11ABCDEFG0abcdefghijkl_mnopqrstuvwxyz0123456789ABCDEF",
    "slack_bot": "xoxb-2048-3072-AbCdEfGhIjKlMnOp",
    "slack_user": "xoxp-1234567890-0987654321-AbCdEf",
    "aws_access_key_id": "AKIAIOSFODNN7EXAMPLE",
    "stripe_live": "sk_live_51H8abcDEFghiJKLmnoPQR",
    "stripe_restricted": "rk_live_51H8abcDEFghiJKLmnoPQR",
    "stripe_test": "sk_test_4eC39HqLyjWDarjtT1zdp7dc",
    "google": "AIzaSyDdI0hCZtE6vySjMm-WEfRq3CPzqKqqsHI",
    "jwt": (
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ."
        "SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
    ),
    "automate_key": "dak_3q2-7wEr9TyUiOpAsDfGhJkLzXcVbNm1234567890",
    "pem": (
        "-----BEGIN RSA PRIVATE KEY-----\nMIIEowIBAAKCAQEA7bq98\nQk3Cx0uGFqf3\n"
        "-----END RSA PRIVATE KEY-----"
    ),
    "pem_openssh": (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXktdjEAAAA\n"
        "-----END OPENSSH PRIVATE KEY-----"
    ),
    "slack_webhook": "https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXX",
}


@pytest.mark.parametrize("kind", sorted(CREDENTIALS))
def test_credentials_are_hidden_inside_free_text(kind):
    secret = CREDENTIALS[kind]

    result = redact_text(f"calling upstream with {secret} now")

    assert REDACTED in result
    assert result.endswith(" now")
    for fragment in secret.split():
        if len(fragment) > 12:
            assert fragment not in result


def test_a_truncated_private_key_block_is_hidden_to_the_end():
    text = "key: -----BEGIN PRIVATE KEY-----\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC (truncated"
    assert "MIIEvQ" not in redact_text(text)


def test_bearer_keeps_the_scheme_and_a_url_keeps_its_host():
    assert redact_text("Bearer abcdefghij0123456789") == "Bearer [REDACTED]"
    assert (
        redact_text("postgres://automate:p@ss:w0rd@db.internal:5432/app")
        == "postgres://[REDACTED]@db.internal:5432/app"
    )
    assert redact_text("redis://:hunter2@cache:6379/0") == "redis://[REDACTED]@cache:6379/0"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("login password=hunter2 ok", "login password=[REDACTED] ok"),
        (
            "GET /cb?code=1&access_token=ya29.a0Af&state=x",
            "GET /cb?code=1&access_token=[REDACTED]&state=x",
        ),
        (
            'body {"password": "hunter2", "user": "bob"}',
            'body {"password": "[REDACTED]", "user": "bob"}',
        ),
        ("{'api_key': 'abc def', 'n': 1}", "{'api_key': '[REDACTED]', 'n': 1}"),
        ('{\\"client_secret\\": \\"abc\\"}', '{\\"client_secret\\": \\"[REDACTED]\\"}'),
        ("STRIPE_API_KEY=sk_abc123", "STRIPE_API_KEY=[REDACTED]"),
        (
            "Authorization: Basic Ym9iOmh1bnRlcjI=\nAccept: */*",
            "Authorization: [REDACTED]\nAccept: */*",
        ),
        ("Cookie: sessionid=abc; csrftoken=def", "Cookie: [REDACTED]"),
        ("x-api-key: abc123", "x-api-key: [REDACTED]"),
    ],
)  # fmt: skip
def test_sensitive_name_value_pairs_are_hidden_inside_text(text, expected):
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "the bearer of bad news arrived",
        "keyword=python monkey=banana max_tokens=256 token_count: 17",
        "Error: connection refused; retrying in 5s",
        "see https://example.com:8443/docs?page=2#top",
        "ssh://git@github.com/acme/repo.git",
        "idempotency_key=exec_42:step_3",
        "skip this task-123, sketch it",
        "primary_key: 42 sort_key=name",
        "",
    ],
)
def test_ordinary_text_is_left_alone(text):
    assert redact_text(text) == text


def test_redaction_is_idempotent():
    text = "Authorization: Bearer abcdefghij0123456789 password=x url=https://u:p@h/ sk-" + "a" * 30
    once = redact_text(text)
    assert redact_text(once) == once


# -- registered secret values ------------------------------------------------------------------


def test_registered_values_are_scrubbed_wherever_they_appear():
    with secret_scope("correct-horse-battery"):
        result = redact({"note": "pw is correct-horse-battery!", "list": ["correct-horse-battery"]})

    assert result == {"note": f"pw is {REDACTED}!", "list": [REDACTED]}


def test_values_registered_in_a_scope_are_forgotten_when_it_ends():
    with secret_scope():
        register_secret_value("plain-looking-value")
        assert redact_text("x plain-looking-value") == f"x {REDACTED}"

    assert redact_text("x plain-looking-value") == "x plain-looking-value"
    assert "plain-looking-value" not in current_secret_values()


def test_nested_scopes_see_their_parents_values():
    with secret_scope("outer-value-1"):
        with secret_scope("inner-value-2"):
            assert redact_text("outer-value-1 inner-value-2") == f"{REDACTED} {REDACTED}"
        assert redact_text("outer-value-1 inner-value-2") == f"{REDACTED} inner-value-2"


def test_url_encoded_and_json_escaped_forms_are_scrubbed_too():
    with secret_scope('p@ss/w"rd value'):
        assert REDACTED in redact_text("https://h/?pw=p%40ss%2Fw%22rd%20value")
        assert "w" not in redact_text('"p@ss/w\\"rd value"').replace(REDACTED, "")


def test_very_short_values_are_not_scrubbed_from_text():
    with secret_scope("abc"):
        assert redact_text("abcdef") == "abcdef"


def test_other_threads_do_not_see_a_scope():
    seen: list[str] = []
    with secret_scope("thread-local-secret"):
        worker = threading.Thread(target=lambda: seen.append(redact_text("thread-local-secret")))
        worker.start()
        worker.join()

    assert seen == ["thread-local-secret"]


def test_tasks_inside_a_scope_share_it():
    async def resolve_in_task() -> None:
        register_secret_value("registered-in-a-task")

    async def main() -> str:
        with secret_scope():
            await asyncio.gather(resolve_in_task())
            return redact_text("registered-in-a-task")

    assert asyncio.run(main()) == REDACTED


# -- settings ----------------------------------------------------------------------------------


def test_settings_add_keys_safe_names_and_patterns():
    automate = {
        "REDACTION_EXTRA_KEYS": ["ssn"],
        "REDACTION_SAFE_KEYS": ["session_token"],
        "REDACTION_EXTRA_PATTERNS": [r"\bACCT-\d{6}\b"],
    }
    with override_settings(AUTOMATE=automate):
        assert redact({"customer_ssn": "078-05-1120", "session_token": "visible"}) == {
            "customer_ssn": REDACTED,
            "session_token": "visible",
        }
        assert redact_text("account ACCT-123456 closed") == f"account {REDACTED} closed"

    assert not is_sensitive_key("customer_ssn")


# -- logging -----------------------------------------------------------------------------------


@pytest.fixture
def redacted_log():
    """A logger whose handler has the RedactingLogFilter; yields (logger, captured text)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(RedactingLogFilter())
    handler.setFormatter(logging.Formatter("%(message)s|%(payload)s"))
    logger = logging.getLogger("tests.governance.redaction")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    yield logger, stream
    logger.removeHandler(handler)


def test_log_filter_scrubs_the_formatted_message_and_extra_fields(redacted_log):
    logger, stream = redacted_log

    logger.info(
        "calling %s with token=%s",
        "https://api.example.com",
        "abc123",
        extra={"payload": {"api_key": "k-1", "q": "hi"}},
    )

    assert stream.getvalue() == (
        "calling https://api.example.com with token=[REDACTED]"
        "|{'api_key': '[REDACTED]', 'q': 'hi'}\n"
    )


def test_log_filter_scrubs_objects_that_format_themselves(redacted_log):
    logger, stream = redacted_log

    class Client:
        def __repr__(self) -> str:
            return "Client(key='sk-abcdefghijklmnopqrstuvwxyz')"

    logger.info("using %r", Client(), extra={"payload": None})

    assert "sk-abc" not in stream.getvalue()


def test_log_filter_scrubs_tracebacks_and_registered_values(redacted_log):
    logger, stream = redacted_log

    with secret_scope("resolved-secret-value"):
        try:
            raise RuntimeError("upstream refused resolved-secret-value")
        except RuntimeError:
            logger.exception("step failed", extra={"payload": "resolved-secret-value"})

    output = stream.getvalue()
    assert "resolved-secret-value" not in output
    assert "RuntimeError: upstream refused [REDACTED]" in output
