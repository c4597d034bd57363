"""What a call costs: prices per provider and model, per million tokens, in USD.

The shipped table (``pricing_data/prices.json``) is built from LiteLLM's maintained price list
(its source and retrieval date are in the file; rebuild it with
``python -m automate_llm.pricing_data.build``). ``AUTOMATE_LLM["PRICING"]`` overrides or adds
entries, keyed ``"provider_type/model"``. Guarantees:

* Every table has a version: the shipped file's, plus a hash of the overrides when there are
  any, so a version names one exact set of prices. Usage rows store the version and the unit
  prices they were charged at, so changing the table never changes an old row's cost.
* Lookup order for ``(provider_type, model)``: overrides, then the shipped table, each first by
  the exact name and then by the name normalised (a ``provider/`` prefix, a fine-tune suffix and
  a dated snapshot suffix removed: ``gpt-4o-2024-08-06`` -> ``gpt-4o``,
  ``claude-sonnet-4-5-20250929`` -> ``claude-sonnet-4-5``). An exact entry always wins over a
  normalised one within the same table.
* An unknown model costs 0 with ``known=False`` and a warning in the log (once per model and
  table); it never raises.
* ``cached_tokens`` are the part of ``input_tokens`` read from the provider's cache: they are
  charged at the cached price and the rest of the input at the input price.
"""

from __future__ import annotations

import hashlib
import json
import logging
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from decimal import ROUND_CEILING, ROUND_HALF_UP, Decimal, InvalidOperation
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

from django.core.exceptions import ImproperlyConfigured

from automate_core.governance.models import DECIMAL_PLACES
from automate_llm.conf import llm_settings
from automate_llm.types import Usage

__all__ = [
    "Price",
    "PricingTable",
    "cost",
    "current_table",
    "model_candidates",
    "price_for",
    "shipped_table",
]

logger = logging.getLogger("automate.llm.pricing")

PRICES_FILE = Path(__file__).parent / "pricing_data" / "prices.json"
MILLION = Decimal(1_000_000)
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)  # the stored precision, 0.000001

_DATED_SUFFIXES = (
    re.compile(r"-\d{4}-\d{2}-\d{2}$"),  # OpenAI: gpt-4o-2024-08-06
    re.compile(r"-\d{8}$"),  # Anthropic: claude-sonnet-4-5-20250929
    re.compile(r"@\d{8}$"),  # Vertex spelling: claude-sonnet-4-5@20250929
    re.compile(r"-(?:0[1-9]|1[0-2])\d{2}$"),  # OpenAI MMDD: gpt-4-0613, gpt-3.5-turbo-0125
    re.compile(r"-latest$"),  # claude-3-5-haiku-latest
)


@dataclass(frozen=True)
class Price:
    """Unit prices (per million tokens) of one model in one table version."""

    provider_type: str
    model: str
    input: Decimal
    output: Decimal
    cached: Decimal
    version: str
    known: bool = True
    # The table entry the price came from ("" when unknown); differs from ``model`` when the
    # name was normalised or an override matched.
    entry: str = ""

    def cost(self, usage: Usage) -> Decimal:
        """The cost of ``usage`` at these prices, rounded to the stored precision."""
        cached = min(max(usage.cached_tokens, 0), max(usage.input_tokens, 0))
        amount = (
            (max(usage.input_tokens, 0) - cached) * self.input
            + cached * self.cached
            + max(usage.output_tokens, 0) * self.output
        ) / MILLION
        return amount.quantize(QUANTUM, rounding=ROUND_HALF_UP)

    def upper_bound(self, *, input_tokens: int, output_tokens: int) -> Decimal:
        """The most ``input_tokens`` in and ``output_tokens`` out can cost (no cache discount),
        rounded up so a reservation is never short by a fraction of the stored precision."""
        amount = (max(input_tokens, 0) * self.input + max(output_tokens, 0) * self.output) / MILLION
        return amount.quantize(QUANTUM, rounding=ROUND_CEILING)


@dataclass(frozen=True)
class PricingTable:
    """Prices by ``(provider_type, model)``; overrides are looked up before the shipped prices."""

    version: str
    source: str
    retrieved: str
    shipped: Mapping[tuple[str, str], tuple[Decimal, Decimal, Decimal]]
    overrides: Mapping[tuple[str, str], tuple[Decimal, Decimal, Decimal]] = field(
        default_factory=dict
    )

    def price(self, provider_type: str, model: str) -> Price:
        """The price of ``model`` on ``provider_type``; a zero, ``known=False`` price if absent."""
        for prices, label in ((self.overrides, "settings"), (self.shipped, "table")):
            for candidate in model_candidates(model):
                found = prices.get((provider_type, candidate))
                if found is not None:
                    unit_input, unit_output, unit_cached = found
                    return Price(
                        provider_type,
                        model,
                        unit_input,
                        unit_output,
                        unit_cached,
                        self.version,
                        known=True,
                        entry=f"{label}:{provider_type}/{candidate}",
                    )
        _warn_unknown(self.version, provider_type, model)
        zero = Decimal(0)
        return Price(provider_type, model, zero, zero, zero, self.version, known=False)

    def __contains__(self, key: object) -> bool:
        return key in self.overrides or key in self.shipped


def model_candidates(model: str) -> Iterator[str]:
    """``model`` as written, then normalised step by step; each name once, most exact first."""
    seen: set[str] = set()

    def fresh(name: str) -> bool:
        if name and name not in seen:
            seen.add(name)
            return True
        return False

    name = model.strip()
    if fresh(name):
        yield name
    lowered = name.lower()
    if fresh(lowered):
        yield lowered
    # "openai/gpt-4o", "anthropic/claude-..." (LiteLLM and gateway spelling).
    if "/" in lowered:
        lowered = lowered.split("/", 1)[1]
        if fresh(lowered):
            yield lowered
    # "ft:gpt-4o-2024-08-06:my-org:custom:abc123" -> "ft:gpt-4o-2024-08-06".
    if lowered.startswith("ft:") and lowered.count(":") > 1:
        lowered = ":".join(lowered.split(":", 2)[:2])
        if fresh(lowered):
            yield lowered
    for suffix in _DATED_SUFFIXES:
        stripped = suffix.sub("", lowered)
        if stripped != lowered and fresh(stripped):
            yield stripped


@cache
def shipped_table() -> PricingTable:
    """The table in ``pricing_data/prices.json``."""
    raw = json.loads(PRICES_FILE.read_text())
    shipped = {
        (provider, model): _unit_prices(entry, f"{PRICES_FILE.name} {provider}/{model}")
        for provider, models in raw["prices"].items()
        for model, entry in models.items()
    }
    return PricingTable(
        version=str(raw["version"]),
        source=str(raw.get("source", "")),
        retrieved=str(raw.get("retrieved", "")),
        shipped=shipped,
    )


def current_table() -> PricingTable:
    """The shipped table with ``AUTOMATE_LLM["PRICING"]`` applied (rebuilt when it changes)."""
    overrides = llm_settings.PRICING or {}
    if not isinstance(overrides, Mapping):
        raise ImproperlyConfigured(
            'AUTOMATE_LLM["PRICING"] must be a dict keyed "provider_type/model".'
        )
    return _with_overrides(json.dumps(overrides, sort_keys=True, default=str))


@lru_cache(maxsize=8)
def _with_overrides(canonical: str) -> PricingTable:
    base = shipped_table()
    raw: dict[str, Any] = json.loads(canonical)
    if not raw:
        return base
    overrides = {}
    for key, entry in raw.items():
        provider, sep, model = str(key).partition("/")
        if not sep or not provider or not model:
            raise ImproperlyConfigured(
                f'AUTOMATE_LLM["PRICING"] key {key!r} must read "provider_type/model".'
            )
        overrides[(provider, model)] = _unit_prices(entry, f'AUTOMATE_LLM["PRICING"][{key!r}]')
    digest = hashlib.sha256(canonical.encode()).hexdigest()[:8]
    return PricingTable(
        version=f"{base.version}+local.{digest}",
        source=f"{base.source}; overridden by AUTOMATE_LLM['PRICING']",
        retrieved=base.retrieved,
        shipped=base.shipped,
        overrides=overrides,
    )


def _unit_prices(entry: Any, where: str) -> tuple[Decimal, Decimal, Decimal]:
    if not isinstance(entry, Mapping) or "input" not in entry or "output" not in entry:
        raise ImproperlyConfigured(
            f'{where} must be {{"input": ..., "output": ..., "cached": ...}} per million tokens.'
        )
    values = []
    for name in ("input", "output", "cached"):
        raw = entry.get(name, entry["input"])  # no cache discount unless one is given
        try:
            value = Decimal(str(raw))
        except InvalidOperation:
            raise ImproperlyConfigured(f"{where}: {name} price {raw!r} is not a number.") from None
        if not value.is_finite() or value < 0:
            raise ImproperlyConfigured(f"{where}: {name} price {raw!r} must be 0 or more.")
        values.append(value)
    return values[0], values[1], values[2]


_warned: set[tuple[str, str, str]] = set()


def _warn_unknown(version: str, provider_type: str, model: str) -> None:
    if (version, provider_type, model) in _warned:
        return
    _warned.add((version, provider_type, model))
    logger.warning(
        "No price for %s model %r in pricing table %s: its usage is recorded at cost 0. "
        'Add it to AUTOMATE_LLM["PRICING"] as "%s/%s".',
        provider_type or "(no provider)",
        model,
        version,
        provider_type or "provider_type",
        model,
    )


def price_for(provider_type: str, model: str) -> Price:
    """The current price of ``model`` on ``provider_type``."""
    return current_table().price(provider_type, model)


def cost(usage: Usage, provider_type: str, model: str) -> Decimal:
    """What ``usage`` of ``model`` on ``provider_type`` costs at today's prices."""
    return price_for(provider_type, model).cost(usage)
