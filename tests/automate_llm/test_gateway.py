"""The gateway against both wire servers: retries with backoff that honours Retry-After,
fallback over (provider, model) pairs, and streams that are retried only before their first
chunk. Waits are recorded by the ``gateway`` fixture, never slept."""

from __future__ import annotations

import pytest

from automate_core.governance.egress import EgressDenied
from automate_llm.errors import (
    NoProviderConfigured,
    ProviderBadResponse,
    ProviderConfigError,
    ProviderRateLimited,
    ProviderRejected,
    ProviderUnavailable,
)
from automate_llm.gateway import Attempts, Gateway, Target
from automate_llm.testing import (
    CutStream,
    Malformed,
    RateLimited,
    Rejected,
    Reply,
    ServerError,
)
from automate_llm.testing.providers import MODELS
from automate_llm.types import ChatMessage, ChatOptions

HELLO = [ChatMessage(role="user", content="Say hello.")]
OPTIONS = ChatOptions(model="", idempotency_key="run-7:step-a")


@pytest.fixture
def target(wire_provider, wire) -> Target:
    return Target(model=MODELS[wire.provider_type], provider=wire_provider)


@pytest.fixture
def backup(make_wire_provider, openai_wire) -> Target:
    """A second pair on another provider (the OpenAI server), for fallback."""
    return Target(model="gpt-4.1-mini", provider=make_wire_provider(openai_wire, slug="backup"))


# -- retries -----------------------------------------------------------------------------------


def test_a_rate_limited_call_is_retried_after_the_wait_the_provider_asked_for(
    gateway, sleeps, target, wire
) -> None:
    wire.script(RateLimited(retry_after="7"), Reply(text="Second time lucky."))

    completion = gateway.chat([target], HELLO, OPTIONS)

    assert completion.result.text == "Second time lucky."
    assert completion.attempts == 2
    assert sleeps == [7.0]


def test_every_attempt_carries_the_same_idempotency_key(gateway, target, wire) -> None:
    wire.script(ServerError(500), ServerError(503), Reply())

    gateway.chat([target], HELLO, OPTIONS)

    assert [r.headers["idempotency-key"] for r in wire.requests] == ["run-7:step-a"] * 3


def test_backoff_doubles_from_the_base_delay_without_retry_after(
    gateway, sleeps, target, wire, settings
) -> None:
    settings.AUTOMATE_LLM = {"MAX_ATTEMPTS": 4, "RETRY_BASE_DELAY": 0.25}
    wire.script(ServerError(500), ServerError(502), Malformed(), Reply())

    gateway.chat([target], HELLO, OPTIONS)

    assert sleeps == [0.25, 0.5, 1.0]
    assert len(wire.requests) == 4


def test_a_long_retry_after_is_capped_by_the_max_delay(
    gateway, sleeps, target, wire, settings
) -> None:
    settings.AUTOMATE_LLM = {"RETRY_MAX_DELAY": 5}
    wire.script(RateLimited(retry_after="120"), Reply())

    gateway.chat([target], HELLO, OPTIONS)

    assert sleeps == [5.0]


def test_after_max_attempts_the_last_error_is_raised_with_the_attempts(
    gateway, sleeps, target, wire
) -> None:
    wire.script(ServerError(500), RateLimited(retry_after="1"), ServerError(503), Reply())

    with pytest.raises(ProviderUnavailable) as caught:
        gateway.chat([target], HELLO, OPTIONS)

    assert len(wire.requests) == 3  # MAX_ATTEMPTS; the scripted Reply is never reached
    assert wire.pending == 1
    assert len(sleeps) == 2
    assert [a["code"] for a in caught.value.details["attempts"]] == [
        "llm_unavailable",
        "llm_rate_limited",
        "llm_unavailable",
    ]


def test_a_rejected_request_is_not_retried(gateway, sleeps, target, wire) -> None:
    wire.script(Rejected(400, "bad tool schema"), Reply())

    with pytest.raises(ProviderRejected, match="bad tool schema"):
        gateway.chat([target], HELLO, OPTIONS)

    assert len(wire.requests) == 1
    assert sleeps == []


def test_max_attempts_of_one_means_no_retry(target, wire, settings) -> None:
    settings.AUTOMATE_LLM = {"MAX_ATTEMPTS": 1}
    waits: list[float] = []
    wire.script(ServerError(500), Reply())

    with pytest.raises(ProviderUnavailable):
        Gateway(sleep=waits.append).chat([target], HELLO, OPTIONS)

    assert (len(wire.requests), waits) == (1, [])


def test_the_attempts_record_says_which_target_answered(gateway, target, wire) -> None:
    attempts = Attempts()
    wire.script(ServerError(500), Reply())

    gateway.chat([target], HELLO, OPTIONS, attempts=attempts)

    assert (attempts.count, attempts.target) == (2, target)
    assert [f["code"] for f in attempts.failures] == ["llm_unavailable"]


# -- fallback ----------------------------------------------------------------------------------


def test_a_target_that_keeps_failing_falls_back_to_the_next(
    gateway, target, backup, wire, openai_wire
) -> None:
    wire.script(ServerError(500), ServerError(500), ServerError(500))
    openai_wire.script(Reply(text="From the backup."))

    completion = gateway.chat([target, backup], HELLO, OPTIONS)

    assert completion.result.text == "From the backup."
    assert completion.target == backup
    assert completion.attempts == 4
    assert openai_wire.last.body["model"] == "gpt-4.1-mini"


def test_a_rejected_target_falls_back_at_once(gateway, sleeps, target, backup, wire) -> None:
    wire.script(Rejected(404, "model not found"))

    completion = gateway.chat([target, backup], HELLO, OPTIONS)

    assert completion.target == backup
    assert sleeps == []


def test_a_target_whose_secret_is_missing_falls_back_without_a_request(
    gateway, make_wire_provider, backup, wire
) -> None:
    broken = make_wire_provider(wire, slug="broken")
    broken.config["api_key"] = {"$secret": "NOT_SET_ANYWHERE"}
    broken.save()

    completion = gateway.chat([Target(model="m", provider=broken), backup], HELLO, OPTIONS)

    assert completion.target == backup
    assert wire.requests == []


def test_an_egress_refusal_falls_back_to_an_allowed_target(
    gateway, make_wire_provider, backup, wire
) -> None:
    metadata = make_wire_provider(wire, slug="metadata")
    metadata.config["base_url"] = "http://169.254.169.254/v1"
    metadata.save()

    completion = gateway.chat([Target(model="m", provider=metadata), backup], HELLO, OPTIONS)

    assert completion.target == backup


def test_an_egress_refusal_of_the_only_target_is_raised_as_is(
    gateway, make_wire_provider, wire
) -> None:
    metadata = make_wire_provider(wire, slug="metadata")
    metadata.config["base_url"] = "http://169.254.169.254/v1"
    metadata.save()

    with pytest.raises(EgressDenied):
        gateway.chat([Target(model="m", provider=metadata)], HELLO, OPTIONS)


def test_when_every_target_fails_the_last_error_is_raised(
    gateway, target, backup, wire, openai_wire
) -> None:
    wire.script(*[ServerError(500)] * 3)
    openai_wire.script(Rejected(401, "invalid key"))

    with pytest.raises(ProviderRejected) as caught:
        gateway.chat([target, backup], HELLO, OPTIONS)

    assert [a["target"] for a in caught.value.details["attempts"]] == [
        target.label,
        target.label,
        target.label,
        backup.label,
    ]


def test_model_config_defaults_apply_per_target(gateway, wire_provider, backup, wire) -> None:
    primary = Target(
        model=MODELS[wire.provider_type],
        provider=wire_provider,
        max_tokens=111,
        params={"top_p": 0.5},
    )

    gateway.chat([primary], HELLO, OPTIONS)
    gateway.chat([primary], HELLO, OPTIONS.model_copy(update={"max_tokens": 7}))

    first, second = wire.requests
    assert (first.body["max_tokens"], first.body["top_p"]) == (111, 0.5)
    assert second.body["max_tokens"] == 7


def test_no_targets_means_no_provider_configured(gateway) -> None:
    with pytest.raises(NoProviderConfigured, match="No LLM provider is configured"):
        gateway.chat([], HELLO, OPTIONS)


# -- streams -----------------------------------------------------------------------------------


def test_a_stream_is_retried_before_its_first_chunk(gateway, sleeps, target, wire) -> None:
    wire.script(RateLimited(retry_after="2"), Reply(text="Streamed after a wait."))

    stream = gateway.stream([target], HELLO, OPTIONS)
    text = "".join(chunk.text for chunk in stream)

    assert text == "Streamed after a wait."
    assert sleeps == [2.0]
    assert stream.attempts.count == 2
    assert stream.result.finish_reason == "stop"
    assert stream.result.request_id == wire.last.request_id


def test_a_stream_falls_back_before_its_first_chunk(
    gateway, target, backup, wire, openai_wire
) -> None:
    wire.script(*[ServerError(500)] * 3)
    openai_wire.script(Reply(text="Backup stream."))

    stream = gateway.stream([target, backup], HELLO, OPTIONS)

    assert "".join(chunk.text for chunk in stream) == "Backup stream."
    assert stream.target == backup


def test_a_stream_broken_mid_way_yields_what_arrived_then_raises_without_retry(
    gateway, sleeps, target, wire
) -> None:
    wire.script(CutStream(Reply(text="alpha beta gamma delta epsilon"), after=4), Reply())
    received: list[str] = []

    stream = gateway.stream([target], HELLO, OPTIONS)
    with pytest.raises(ProviderBadResponse):
        for chunk in stream:
            received.append(chunk.text)

    assert received and "".join(received) == stream.result.text
    assert "alpha beta gamma delta epsilon".startswith(stream.result.text)
    assert stream.result.finish_reason == "error"
    assert len(wire.requests) == 1
    assert wire.pending == 1
    assert sleeps == []


def test_nothing_is_sent_until_the_stream_is_iterated(gateway, target, wire) -> None:
    stream = gateway.stream([target], HELLO, OPTIONS)

    assert wire.requests == []
    stream.close()
    assert wire.requests == []


def test_closing_a_stream_early_stops_it(gateway, target, wire) -> None:
    wire.script(Reply(text="a long answer that is not read to its end", chunk_size=2))

    stream = gateway.stream([target], HELLO, OPTIONS)
    first = next(iter(stream))
    stream.close()

    assert first.text
    assert not stream.finished


# -- embeddings --------------------------------------------------------------------------------


def test_embeddings_fall_back_from_a_provider_without_them(
    gateway, make_wire_provider, anthropic_wire, openai_wire
) -> None:
    claude = Target(model="claude-sonnet-5", provider=make_wire_provider(anthropic_wire))
    ada = Target(model="text-embedding-3-small", provider=make_wire_provider(openai_wire))

    result = gateway.embed([claude, ada], ["hello"])

    assert len(result.vectors) == 1
    assert anthropic_wire.requests == []


def test_embeddings_on_a_provider_without_them_is_a_config_error(
    gateway, make_wire_provider, anthropic_wire
) -> None:
    claude = Target(model="claude-sonnet-5", provider=make_wire_provider(anthropic_wire))

    with pytest.raises(ProviderConfigError, match="has no embeddings"):
        gateway.embed([claude], ["hello"])


def test_embeddings_are_retried_like_chat(gateway, sleeps, make_wire_provider, openai_wire) -> None:
    openai_wire.script(RateLimited(retry_after="1"))
    ada = Target(model="text-embedding-3-small", provider=make_wire_provider(openai_wire))

    result = gateway.embed([ada], ["a", "b"])

    assert len(result.vectors) == 2
    assert sleeps == [1.0]


def test_rate_limited_is_reported_when_attempts_run_out(gateway, target, wire) -> None:
    wire.script(*[RateLimited(retry_after="1")] * 3)

    with pytest.raises(ProviderRateLimited):
        gateway.chat([target], HELLO, OPTIONS)
