# ruff: noqa: S608  (fixed table names of the test schema)
"""A small demo-shop schema for the data chat tests and benchmark, seeded for two tenants.

Tenant B's rows carry :data:`B_MARKER` in their text columns and ids from :data:`B_ID_BASE`
up; one of tenant A's orders is on a channel the dataset's row filter hides and carries
:data:`HIDDEN_MARKER`. No query run as tenant A may ever return either marker.
"""

from __future__ import annotations

import datetime as dt
import random
from decimal import Decimal
from typing import Any

from automate_datachat import table
from automate_datachat.definitions import DatasetDefinition
from automate_datachat.registry import register_dataset

B_MARKER = "LEAK-B-7f3a"
HIDDEN_MARKER = "HIDDEN-ROW-91c2"
B_ID_BASE = 100_000
CUSTOMERS = "datachat_shop_customer"
ORDERS = "datachat_shop_order"
RELATIONS = [CUSTOMERS, ORDERS]

SCHEMA = f"""
DROP SCHEMA IF EXISTS datachat_reference CASCADE;
DROP TABLE IF EXISTS {ORDERS};
DROP TABLE IF EXISTS {CUSTOMERS};
CREATE TABLE {CUSTOMERS} (
    id integer PRIMARY KEY,
    tenant_id uuid NOT NULL,
    name text NOT NULL,
    email text NOT NULL,
    country text NOT NULL,
    segment text,
    signed_up_at timestamptz NOT NULL,
    secret_note text NOT NULL
);
CREATE TABLE {ORDERS} (
    id integer PRIMARY KEY,
    tenant_id uuid NOT NULL,
    customer_id integer NOT NULL REFERENCES {CUSTOMERS} (id),
    status text NOT NULL,
    channel text NOT NULL,
    total numeric(10, 2) NOT NULL,
    quantity integer NOT NULL,
    placed_at timestamptz NOT NULL,
    internal_cost numeric(10, 2) NOT NULL
);
"""

COUNTRIES = ["de", "fr", "us", "jp", "br"]
SEGMENTS = ["retail", "wholesale", None]
STATUSES = ["paid", "refunded", "pending", "failed"]
CHANNELS = ["web", "store"]


def create_and_seed(cursor: Any, tenant_a: Any, tenant_b: Any) -> None:
    """Create the tables and fill them (deterministically) for both tenants."""
    cursor.execute(SCHEMA)
    rng = random.Random(7)
    for tenant_id, base, customers, orders, mark in (
        (tenant_a, 1, 40, 300, ""),
        (tenant_b, B_ID_BASE, 30, 200, B_MARKER),
    ):
        start = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
        customer_rows = [
            (
                base + i,
                tenant_id,
                f"{mark or 'customer'} {i}",
                f"c{i}{mark.lower()}@example.com",
                mark or rng.choice(COUNTRIES),
                rng.choice(SEGMENTS),
                start + dt.timedelta(days=rng.randrange(365), hours=rng.randrange(24)),
                f"secret {i}",
            )
            for i in range(customers)
        ]
        cursor.executemany(
            f"INSERT INTO {CUSTOMERS} VALUES (%s, %s, %s, %s, %s, %s, %s, %s)", customer_rows
        )
        order_rows = [
            (
                base + i,
                tenant_id,
                base + rng.randrange(customers),
                mark or rng.choice(STATUSES),
                rng.choice(CHANNELS),
                Decimal(rng.randrange(100, 50000)) / 100,
                rng.randrange(1, 10),
                start + dt.timedelta(days=rng.randrange(500), minutes=rng.randrange(1440)),
                Decimal(rng.randrange(50, 20000)) / 100,
            )
            for i in range(orders)
        ]
        cursor.executemany(
            f"INSERT INTO {ORDERS} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)", order_rows
        )
    cursor.execute(
        f"INSERT INTO {ORDERS} VALUES (%s, %s, %s, %s, 'internal', 1, 1, now(), 1)",
        [50_000, tenant_a, 1, HIDDEN_MARKER],
    )


def shop_dataset(row_cap: int = 5000) -> DatasetDefinition:
    """The shop dataset (unbound): customers without their secret note, orders without their
    internal cost, and only the web and store channels."""
    return register_dataset(
        "shop",
        description="Customers and their orders.",
        row_cap=row_cap,
        tables=[
            table(
                "customers",
                relation=CUSTOMERS,
                tenant_column="tenant_id",
                columns=[
                    {"name": "id"},
                    {"name": "name", "description": "Full name", "samples": ["customer 1"]},
                    "email",
                    {"name": "country", "samples": COUNTRIES},
                    "segment",
                    "signed_up_at",
                ],
            ),
            table(
                "orders",
                relation=ORDERS,
                tenant_column="tenant_id",
                row_filters={"channel": CHANNELS},
                columns=[
                    "id",
                    "customer_id",
                    {"name": "status", "samples": STATUSES},
                    "channel",
                    "total",
                    "quantity",
                    "placed_at",
                ],
            ),
        ],
    )


#: The rows tenant A's dataset exposes, as views: what the benign corpus is compared against.
REFERENCE_VIEWS = f"""
DROP SCHEMA IF EXISTS datachat_reference CASCADE;
CREATE SCHEMA datachat_reference;
CREATE VIEW datachat_reference.customers AS
    SELECT id, name, email, country, segment, signed_up_at FROM public.{CUSTOMERS}
    WHERE tenant_id = %(tenant)s;
CREATE VIEW datachat_reference.orders AS
    SELECT id, customer_id, status, channel, total, quantity, placed_at FROM public.{ORDERS}
    WHERE tenant_id = %(tenant)s AND channel IN ('web', 'store');
"""
