from decimal import Decimal

import pytest

from automate_core.errors import InvalidInputError
from automate_modal.pricing import SHIPPED_PRICES, SHIPPED_VERSION, price_for


def test_every_gpu_modal_offers_has_a_price():
    assert set(SHIPPED_PRICES) == {
        "T4", "L4", "A10G", "L40S", "A100-40GB", "A100-80GB", "H100", "H200", "B200"
    }  # fmt: skip


def test_cost_is_seconds_times_the_per_second_price_rounded_up():
    price = price_for("H100")
    assert price.version == SHIPPED_VERSION
    assert price.cost(10) == Decimal("0.010970")
    assert price.cost(0.0000001) == Decimal("0.000001")


def test_a_gpu_count_multiplies_the_price():
    assert price_for("H100:2").per_second == 2 * SHIPPED_PRICES["H100"]


def test_settings_override_a_price_and_change_the_version(settings):
    settings.AUTOMATE_MODAL = {"PRICING": {"L4": "0.0003"}}
    price = price_for("L4")
    assert price.per_second == Decimal("0.0003")
    assert price.version.startswith(f"{SHIPPED_VERSION}+")


def test_an_unknown_gpu_has_no_price():
    with pytest.raises(InvalidInputError):
        price_for("TPU-v5")
