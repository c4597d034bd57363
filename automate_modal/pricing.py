"""What GPU time costs: USD per second for each GPU type, versioned.

The shipped table is Modal's published on-demand GPU prices (``SHIPPED_VERSION`` names when
they were taken). ``AUTOMATE_MODAL["PRICING"]`` overrides or adds GPUs (``{"H100": "0.00110"}``);
the version then carries a hash of the overrides, so a version names one exact set of prices.
Jobs store the version they were charged at, so changing the table never changes an old cost.
Costs are rounded up to the stored precision (a millionth of a dollar).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from decimal import ROUND_CEILING, Decimal

from automate_core.errors import InvalidInputError
from automate_core.governance.models import DECIMAL_PLACES
from automate_modal.conf import modal_settings

__all__ = ["SHIPPED_PRICES", "SHIPPED_VERSION", "GPUPrice", "price_for", "table_version"]

SHIPPED_VERSION = "modal-2025-06"
#: USD per second, Modal on-demand (modal.com/pricing).
SHIPPED_PRICES: dict[str, Decimal] = {
    "T4": Decimal("0.000164"),
    "L4": Decimal("0.000222"),
    "A10G": Decimal("0.000306"),
    "L40S": Decimal("0.000542"),
    "A100-40GB": Decimal("0.000583"),
    "A100-80GB": Decimal("0.000694"),
    "H100": Decimal("0.001097"),
    "H200": Decimal("0.001261"),
    "B200": Decimal("0.001736"),
}
QUANTUM = Decimal(1).scaleb(-DECIMAL_PLACES)


@dataclass(frozen=True)
class GPUPrice:
    gpu: str
    per_second: Decimal
    version: str

    def cost(self, seconds: float) -> Decimal:
        """What ``seconds`` of this GPU cost, rounded up to the stored precision."""
        amount = self.per_second * Decimal(str(max(0.0, seconds)))
        return amount.quantize(QUANTUM, rounding=ROUND_CEILING)


def _overrides() -> dict[str, Decimal]:
    return {gpu: Decimal(str(price)) for gpu, price in (modal_settings.PRICING or {}).items()}


def table_version() -> str:
    overrides = _overrides()
    if not overrides:
        return SHIPPED_VERSION
    canonical = json.dumps({k: str(v) for k, v in sorted(overrides.items())})
    return f"{SHIPPED_VERSION}+{hashlib.sha256(canonical.encode()).hexdigest()[:8]}"


def price_for(gpu: str) -> GPUPrice:
    """The price of ``gpu`` (``"H100"``; a count suffix such as ``"H100:2"`` multiplies it)."""
    name, _, count = gpu.partition(":")
    prices = {**SHIPPED_PRICES, **_overrides()}
    if name not in prices or (count and not count.isdigit()):
        raise InvalidInputError(
            f"No price for GPU {gpu!r}; known: {', '.join(prices)}. Add it to "
            "AUTOMATE_MODAL['PRICING']."
        )
    return GPUPrice(gpu, prices[name] * int(count or 1), table_version())
