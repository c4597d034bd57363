"""Rebuild ``prices.json`` from LiteLLM's community-maintained price list.

LiteLLM's ``model_prices_and_context_window.json`` (also shipped in its wheel as
``litellm/model_prices_and_context_window_backup.json``) gives USD per token for each model and
the provider page it was taken from. This keeps the OpenAI and Anthropic chat, responses and
embedding models and converts them to exact decimal prices per million tokens::

    python -m automate_llm.pricing_data.build model_prices.json \\
        --version 2026-11-23 --source "LiteLLM 1.109.1 model_prices_and_context_window.json"

Give every rebuilt table a new ``--version``: usage rows store the version they were priced with.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from decimal import Decimal
from pathlib import Path
from typing import Any

PRICES_FILE = Path(__file__).with_name("prices.json")
# LiteLLM provider name -> our provider_type.
PROVIDERS = {"openai": "openai", "anthropic": "anthropic"}
MODES = {"chat", "responses", "embedding"}
MILLION = Decimal(1_000_000)


def per_million(value: Any) -> str | None:
    """USD per token (a float in the source) as an exact decimal string per million tokens."""
    if value is None:
        return None
    amount = Decimal(str(value)) * MILLION
    return format(amount.normalize(), "f") if amount else "0"


def convert(source: Mapping[str, Any], *, version: str, source_name: str, retrieved: str) -> dict:
    """The table for ``prices.json``: ``{"prices": {provider_type: {model: {...}}}}``."""
    prices: dict[str, dict[str, dict[str, str]]] = {p: {} for p in PROVIDERS.values()}
    for model, spec in sorted(source.items()):
        if not isinstance(spec, Mapping) or spec.get("mode") not in MODES:
            continue
        provider = PROVIDERS.get(str(spec.get("litellm_provider")))
        unit_input = per_million(spec.get("input_cost_per_token"))
        if provider is None or unit_input is None or "/" in model:
            continue
        unit_output = per_million(spec.get("output_cost_per_token")) or "0"
        cached = per_million(spec.get("cache_read_input_token_cost"))
        prices[provider][model] = {
            "input": unit_input,
            "output": unit_output,
            # A model without a cache discount charges cached input at the input price.
            "cached": cached if cached is not None else unit_input,
        }
    return {
        "version": version,
        "source": source_name,
        "retrieved": retrieved,
        "unit": "USD per million tokens",
        "prices": prices,
    }


def render(table: Mapping[str, Any]) -> str:
    """JSON with one model per line, so a rebuilt table reads as a short diff."""
    lines = ["{"]
    for key in ("version", "source", "retrieved", "unit"):
        lines.append(f" {json.dumps(key)}: {json.dumps(table[key])},")
    lines.append(' "prices": {')
    providers = list(table["prices"].items())
    for p_index, (provider, models) in enumerate(providers):
        lines.append(f"  {json.dumps(provider)}: {{")
        entries = list(models.items())
        for m_index, (model, price) in enumerate(entries):
            comma = "," if m_index < len(entries) - 1 else ""
            lines.append(f"   {json.dumps(model)}: {json.dumps(price)}{comma}")
        lines.append("  }" + ("," if p_index < len(providers) - 1 else ""))
    lines.extend([" }", "}"])
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("litellm_json", type=Path)
    parser.add_argument("--version", required=True, help="e.g. the retrieval date, 2026-11-23")
    parser.add_argument("--source", required=True, help="where the file came from")
    parser.add_argument("--retrieved", help="retrieval date (default: --version)")
    parser.add_argument("--output", type=Path, default=PRICES_FILE)
    args = parser.parse_args(argv)
    table = convert(
        json.loads(args.litellm_json.read_text()),
        version=args.version,
        source_name=args.source,
        retrieved=args.retrieved or args.version,
    )
    args.output.write_text(render(table))
    counts = {provider: len(models) for provider, models in table["prices"].items()}
    print(f"wrote {args.output}: {counts}")


if __name__ == "__main__":
    main()
