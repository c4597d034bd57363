"""Prices per provider and model: the shipped, versioned table, settings overrides, model name
normalisation, and unknown models at zero cost with a warning."""

from __future__ import annotations

import json
import logging
from decimal import Decimal

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import override_settings

from automate_llm import pricing
from automate_llm.pricing import cost, price_for
from automate_llm.pricing_data import build
from automate_llm.types import Usage

MILLION = 1_000_000


def test_shipped_table_names_its_source_date_and_version():
    table = pricing.shipped_table()

    assert table.version and table.retrieved
    assert "LiteLLM" in table.source
    assert table.version == pricing.current_table().version


@pytest.mark.parametrize(
    ("provider_type", "model"),
    [
        ("openai", "gpt-4o"),
        ("openai", "gpt-4o-mini"),
        ("openai", "gpt-4.1"),
        ("openai", "gpt-4.1-mini"),
        ("openai", "gpt-5"),
        ("openai", "gpt-5-mini"),
        ("openai", "o3"),
        ("openai", "o4-mini"),
        ("openai", "text-embedding-3-small"),
        ("openai", "text-embedding-3-large"),
        ("anthropic", "claude-sonnet-4-5"),
        ("anthropic", "claude-haiku-4-5"),
        ("anthropic", "claude-opus-4-5"),
    ],
)
def test_current_chat_and_embedding_models_are_priced(provider_type, model):
    price = price_for(provider_type, model)

    assert price.known
    assert price.input > 0
    assert price.cached <= price.input


def test_gpt_4o_has_its_published_prices():
    price = price_for("openai", "gpt-4o")

    assert (price.input, price.output, price.cached) == (
        Decimal("2.5"),
        Decimal("10"),
        Decimal("1.25"),
    )


def test_cached_input_is_charged_at_the_cached_price():
    usage = Usage(input_tokens=MILLION, cached_tokens=400_000, output_tokens=100_000)

    # 600k uncached at 2.50 + 400k cached at 1.25 + 100k out at 10.00 per million.
    assert cost(usage, "openai", "gpt-4o") == Decimal("3.000000")


def test_cached_tokens_above_input_are_capped_at_the_input():
    usage = Usage(input_tokens=100, cached_tokens=500, output_tokens=0)

    assert cost(usage, "openai", "gpt-4o") == Decimal("0.000125")  # 100 at the cached price


def test_cost_is_rounded_to_the_stored_precision():
    usage = Usage(input_tokens=3, output_tokens=0)  # 3 * 0.05 / 1e6 = 0.00000015

    assert cost(usage, "openai", "gpt-5-nano") == Decimal("0.000000")
    assert cost(Usage(input_tokens=10), "openai", "gpt-5-nano") == Decimal("0.000001")


def test_upper_bound_rounds_up_and_ignores_the_cache_discount():
    price = price_for("openai", "gpt-5-nano")

    assert price.upper_bound(input_tokens=3, output_tokens=0) == Decimal("0.000001")
    assert price.upper_bound(input_tokens=1000, output_tokens=1000) == Decimal("0.000450")


def test_dated_snapshot_without_its_own_entry_is_priced_as_its_base_model():
    assert price_for("openai", "gpt-4o-mini-2099-01-01").entry == "table:openai/gpt-4o-mini"
    assert price_for("anthropic", "claude-sonnet-4-5-20991231").entry == (
        "table:anthropic/claude-sonnet-4-5"
    )
    assert price_for("openai", "gpt-4-0314").entry == "table:openai/gpt-4"
    assert price_for("anthropic", "claude-haiku-4-5@20251001").entry == (
        "table:anthropic/claude-haiku-4-5"
    )


def test_snapshot_with_its_own_entry_keeps_its_own_price():
    snapshot = price_for("openai", "gpt-4o-2024-05-13")

    assert snapshot.entry == "table:openai/gpt-4o-2024-05-13"
    assert snapshot.input == Decimal("5") != price_for("openai", "gpt-4o").input


def test_provider_prefix_and_case_are_normalised():
    price = price_for("openai", "openai/GPT-4o")

    assert price.known and price.entry == "table:openai/gpt-4o"
    assert price.model == "openai/GPT-4o"


def test_fine_tuned_model_is_priced_by_its_fine_tune_entry():
    price = price_for("openai", "ft:gpt-4o-mini-2024-07-18:acme:support:abc123")

    assert price.entry == "table:openai/ft:gpt-4o-mini-2024-07-18"
    assert price.input == Decimal("0.3")


def test_unknown_model_costs_nothing_is_flagged_and_logged(caplog):
    caplog.set_level(logging.WARNING, logger="automate.llm.pricing")

    price = price_for("openai", "my-local-llama-unknown-1")

    assert not price.known
    assert price.cost(Usage(input_tokens=10_000, output_tokens=10_000)) == Decimal(0)
    assert "my-local-llama-unknown-1" in caplog.text
    assert 'AUTOMATE_LLM["PRICING"]' in caplog.text


def test_unknown_model_is_logged_once_per_table(caplog):
    caplog.set_level(logging.WARNING, logger="automate.llm.pricing")

    for _ in range(3):
        price_for("openai", "once-only-unknown-model")

    assert caplog.text.count("once-only-unknown-model") == 2  # in the message and the hint


def test_a_model_is_priced_only_for_its_own_provider():
    assert not price_for("anthropic", "gpt-4o").known
    assert not price_for("", "gpt-4o").known


def test_settings_override_wins_and_names_a_new_version():
    shipped = pricing.current_table().version
    overrides = {"openai/gpt-4o": {"input": "1", "output": "2", "cached": "0.5"}}

    with override_settings(AUTOMATE_LLM={"PRICING": overrides}):
        price = price_for("openai", "gpt-4o")
        # An override of the base model covers its snapshots too.
        snapshot = price_for("openai", "gpt-4o-2024-08-06")

    assert (price.input, price.output, price.cached) == (Decimal(1), Decimal(2), Decimal("0.5"))
    assert price.entry == "settings:openai/gpt-4o"
    assert snapshot.entry == "settings:openai/gpt-4o"
    assert price.version.startswith(shipped + "+local.")
    assert price_for("openai", "gpt-4o").input == Decimal("2.5")  # back to the shipped price


def test_different_overrides_get_different_versions():
    with override_settings(AUTOMATE_LLM={"PRICING": {"openai/x": {"input": 1, "output": 1}}}):
        first = pricing.current_table().version
    with override_settings(AUTOMATE_LLM={"PRICING": {"openai/x": {"input": 2, "output": 1}}}):
        second = pricing.current_table().version

    assert first != second


def test_override_adds_a_model_the_table_does_not_know():
    overrides = {"openai/meta-llama/Llama-3.1-8B": {"input": "0.1", "output": "0.2"}}

    with override_settings(AUTOMATE_LLM={"PRICING": overrides}):
        price = price_for("openai", "meta-llama/Llama-3.1-8B")

    assert price.known
    assert price.cached == Decimal("0.1")  # no cache discount unless one is given


@pytest.mark.parametrize(
    "overrides",
    [
        {"gpt-4o": {"input": 1, "output": 1}},
        {"openai/gpt-4o": {"input": "cheap", "output": 1}},
        {"openai/gpt-4o": {"input": -1, "output": 1}},
        {"openai/gpt-4o": {"input": "NaN", "output": 1}},
        {"openai/gpt-4o": {"output": 1}},
        {"openai/gpt-4o": 3},
        ["openai/gpt-4o"],
    ],
)
def test_invalid_override_is_a_clear_configuration_error(overrides):
    with (
        override_settings(AUTOMATE_LLM={"PRICING": overrides}),
        pytest.raises(ImproperlyConfigured, match="PRICING"),
    ):
        price_for("openai", "gpt-4o")


def test_build_converts_litellm_per_token_prices_to_exact_per_million():
    source = {
        "sample_spec": {"mode": "one of: chat, embedding"},
        "gpt-4o": {
            "litellm_provider": "openai",
            "mode": "chat",
            "input_cost_per_token": 2.5e-06,
            "output_cost_per_token": 1e-05,
            "cache_read_input_token_cost": 1.25e-06,
        },
        "text-embedding-3-small": {
            "litellm_provider": "openai",
            "mode": "embedding",
            "input_cost_per_token": 2e-08,
            "output_cost_per_token": 0.0,
        },
        "claude-haiku-4-5": {
            "litellm_provider": "anthropic",
            "mode": "chat",
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 5e-06,
            "cache_read_input_token_cost": 1e-07,
        },
        "anthropic.claude-haiku-4-5-v1:0": {
            "litellm_provider": "bedrock",
            "mode": "chat",
            "input_cost_per_token": 1e-06,
            "output_cost_per_token": 5e-06,
        },
        "dall-e-3": {"litellm_provider": "openai", "mode": "image_generation"},
    }

    table = build.convert(source, version="v1", source_name="test", retrieved="2026-01-01")

    assert table["prices"] == {
        "openai": {
            "gpt-4o": {"input": "2.5", "output": "10", "cached": "1.25"},
            "text-embedding-3-small": {"input": "0.02", "output": "0", "cached": "0.02"},
        },
        "anthropic": {"claude-haiku-4-5": {"input": "1", "output": "5", "cached": "0.1"}},
    }
    assert json.loads(build.render(table)) == table


def test_shipped_file_is_what_the_builder_renders():
    raw = json.loads(pricing.PRICES_FILE.read_text())

    assert build.render(raw) == pricing.PRICES_FILE.read_text()
