# ruff: noqa: S608  (fixed table names of the demo schema)
"""The demo shop dataset ``make run`` ships, so a newcomer can ask questions at once.

Plain tables (``datachat_demo_*``: customers, products, orders, order lines), created and
seeded by ``manage.py datachat_demo`` for the demo tenants (``demo``, made by ``automate_demo``,
and ``demo-b``) with a few thousand deterministic rows each, every row carrying its tenant.
``tenant_id`` has no foreign key to the tenant table: a key from a table Django does not manage
would make its ``flush`` (a TRUNCATE of the tenants) fail.
The ``demo-shop`` dataset over them is registered in code for those two tenants only (unless
``AUTOMATE_DATACHAT["DEMO_DATASET"]`` is False), so the role is granted on them like on any
registered dataset's tables.
"""

from __future__ import annotations

import datetime as dt
import random
import uuid
from decimal import Decimal
from typing import Any

from automate_datachat.definitions import DatasetDefinition
from automate_datachat.registry import register_dataset, table

SLUG = "demo-shop"
TENANTS = {"demo": "Demo", "demo-b": "Demo B"}
CUSTOMERS = "datachat_demo_customer"
PRODUCTS = "datachat_demo_product"
ORDERS = "datachat_demo_order"
ORDER_LINES = "datachat_demo_order_line"
RELATIONS = [CUSTOMERS, PRODUCTS, ORDERS, ORDER_LINES]

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS {CUSTOMERS} (
    id bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    country text NOT NULL,
    segment text NOT NULL,
    signed_up_at timestamptz NOT NULL
);
CREATE TABLE IF NOT EXISTS {PRODUCTS} (
    id bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    category text NOT NULL,
    price numeric(10, 2) NOT NULL
);
CREATE TABLE IF NOT EXISTS {ORDERS} (
    id bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    customer_id bigint NOT NULL REFERENCES {CUSTOMERS} (id) ON DELETE CASCADE,
    status text NOT NULL,
    placed_at timestamptz NOT NULL,
    total numeric(12, 2) NOT NULL
);
CREATE TABLE IF NOT EXISTS {ORDER_LINES} (
    id bigint PRIMARY KEY,
    tenant_id uuid NOT NULL,
    order_id bigint NOT NULL REFERENCES {ORDERS} (id) ON DELETE CASCADE,
    product_id bigint NOT NULL REFERENCES {PRODUCTS} (id) ON DELETE CASCADE,
    quantity integer NOT NULL,
    unit_price numeric(10, 2) NOT NULL
);
CREATE INDEX IF NOT EXISTS datachat_demo_order_tenant ON {ORDERS} (tenant_id, placed_at);
"""

COUNTRIES = ["Germany", "France", "United States", "Japan", "Brazil", "India"]
SEGMENTS = ["consumer", "small business", "enterprise"]
STATUSES = ["paid"] * 6 + ["refunded", "cancelled", "pending"]
CATEGORIES = {
    "Coffee": ["Espresso beans", "Filter roast", "Decaf", "Cold brew"],
    "Equipment": ["Grinder", "Kettle", "Pour-over", "Scale", "Moka pot"],
    "Tea": ["Green tea", "Earl grey", "Chai", "Rooibos"],
    "Accessories": ["Mug", "Filters", "Tote bag", "Gift card"],
}
CUSTOMER_COUNT, ORDER_COUNT = 400, 1500


def register() -> DatasetDefinition:
    """Offer ``demo-shop`` to the demo tenants."""
    return register_dataset(
        SLUG,
        description="A coffee shop: customers, products, their orders and order lines.",
        tenants=list(TENANTS),
        row_cap=5000,
        tables=[
            table(
                "customers",
                relation=CUSTOMERS,
                tenant_column="tenant_id",
                description="People who bought from the shop.",
                columns=[
                    "id",
                    "name",
                    "email",
                    {"name": "country", "samples": COUNTRIES[:3]},
                    {"name": "segment", "samples": SEGMENTS},
                    {"name": "signed_up_at", "description": "When they created an account"},
                ],
            ),
            table(
                "products",
                relation=PRODUCTS,
                tenant_column="tenant_id",
                columns=[
                    "id",
                    {"name": "name", "samples": ["Grinder", "Chai"]},
                    {"name": "category", "samples": list(CATEGORIES)},
                    {"name": "price", "description": "List price in EUR"},
                ],
            ),
            table(
                "orders",
                relation=ORDERS,
                tenant_column="tenant_id",
                columns=[
                    "id",
                    {"name": "customer_id", "description": "customers.id"},
                    {"name": "status", "samples": ["paid", "refunded", "cancelled", "pending"]},
                    {"name": "placed_at", "description": "When the order was placed"},
                    {"name": "total", "description": "Order total in EUR"},
                ],
            ),
            table(
                "order_lines",
                relation=ORDER_LINES,
                tenant_column="tenant_id",
                description="One product of an order.",
                columns=[
                    "id",
                    {"name": "order_id", "description": "orders.id"},
                    {"name": "product_id", "description": "products.id"},
                    "quantity",
                    {"name": "unit_price", "description": "Price paid per unit in EUR"},
                ],
            ),
        ],
    )


def seed(cursor: Any, tenant_id: uuid.UUID, number: int) -> bool:
    """Create the tables if needed and fill them for one tenant (``number`` picks its ids and
    its random seed); a tenant that has rows already is left as it is. True if seeded."""
    cursor.execute(SCHEMA)
    cursor.execute(f"SELECT 1 FROM {CUSTOMERS} WHERE tenant_id = %s LIMIT 1", [tenant_id])
    if cursor.fetchone():
        return False
    rng = random.Random(number)
    base = number * 10_000_000
    start = dt.datetime(2025, 1, 1, tzinfo=dt.UTC)
    customers = [
        (
            base + i,
            tenant_id,
            f"Customer {i}",
            f"customer{i}@example.com",
            rng.choice(COUNTRIES),
            rng.choice(SEGMENTS),
            start + dt.timedelta(days=rng.randrange(300), hours=rng.randrange(24)),
        )
        for i in range(CUSTOMER_COUNT)
    ]
    products: list[tuple[Any, ...]] = []
    for category, names in CATEGORIES.items():
        for name in names:
            price = Decimal(rng.randrange(400, 30000)) / 100
            products.append((base + len(products), tenant_id, name, category, price))
    orders: list[tuple[Any, ...]] = []
    lines: list[tuple[Any, ...]] = []
    for i in range(ORDER_COUNT):
        order_id = base + i
        placed = start + dt.timedelta(days=rng.randrange(480), minutes=rng.randrange(1440))
        total = Decimal(0)
        for _ in range(rng.choice([1, 1, 2, 2, 3, 4])):
            product = rng.choice(products)
            quantity = rng.randrange(1, 4)
            total += product[4] * quantity
            lines.append((base + len(lines), tenant_id, order_id, product[0], quantity, product[4]))
        customer = rng.choice(customers)[0]
        orders.append((order_id, tenant_id, customer, rng.choice(STATUSES), placed, total))
    for relation, rows in (
        (CUSTOMERS, customers),
        (PRODUCTS, products),
        (ORDERS, orders),
        (ORDER_LINES, lines),
    ):
        marks = ", ".join(["%s"] * len(rows[0]))
        cursor.executemany(f"INSERT INTO {relation} VALUES ({marks})", rows)
    return True
