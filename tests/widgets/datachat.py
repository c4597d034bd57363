"""Data-chat embeds over the data chat tests' shop tables (tenant A's rows, committed, and the
data chat role granted on them), through a dataset whose order rows are filtered by the signed
visitor's ``customer`` claim."""

from __future__ import annotations

from typing import Any

import pytest

from automate_core.tenancy.models import Tenant
from automate_datachat import table
from automate_datachat.registry import register_dataset, unregister_dataset
from tests.automate_datachat import shop
from widgets.models import ChatEmbed

DATASET = "my-orders"
#: What the model answers: every order the visitor may see, counted per customer, as a bar.
ORDERS_BY_CUSTOMER = {
    "sql": "SELECT customer_id, count(*) AS orders FROM orders GROUP BY customer_id",
    "explanation": "Your orders, counted.",
    "chart": {
        "mark": "bar",
        "x": {"field": "customer_id", "type": "nominal"},
        "y": {"field": "orders", "type": "quantitative"},
        "color": None,
        "title": "Orders",
    },
}


@pytest.fixture
def shop_tenant(shop_tenants) -> Tenant:
    """Tenant A of the shop (its row made again if a transactional test flushed it)."""
    tenant, _ = Tenant.objects.get_or_create(
        pk=shop_tenants[0].pk, defaults={"name": "Shop A", "slug": "shop-a"}
    )
    return tenant


@pytest.fixture
def my_orders():
    """The dataset: orders of the customer named by the visitor's ``customer`` claim."""
    register_dataset(
        DATASET,
        description="The signed-in customer's orders.",
        tables=[
            table(
                "orders",
                relation=shop.ORDERS,
                tenant_column="tenant_id",
                row_filters={"customer_id": "$claims.customer"},
                columns=["id", "customer_id", "status", "total", "placed_at"],
            )
        ],
    )
    yield DATASET
    unregister_dataset(DATASET)


@pytest.fixture
def shop_model(make_wire_provider, openai_wire, shop_tenant):
    """Tenant A's default model, on the local OpenAI wire server."""
    from automate_llm.testing.providers import MODELS

    return make_wire_provider(
        openai_wire, tenant_=shop_tenant, is_default=True, default_model=MODELS["openai"]
    )


def make_datachat_embed(tenant: Tenant, origin: str, **fields: Any) -> ChatEmbed:
    """A signed embed of ``tenant`` answering from :data:`DATASET`, allowed on ``origin``."""
    fields.setdefault("identity_mode", ChatEmbed.IdentityMode.SIGNED)
    return ChatEmbed.objects.create(
        tenant=tenant, name="My orders", dataset=DATASET, allowed_origins=[origin], **fields
    )
