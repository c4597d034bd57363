"""Create the demo shop tables and data for the demo tenants (idempotent)."""

from __future__ import annotations

from typing import Any

from django.db import DatabaseError, connection, transaction

from automate_core.management.base import DatabaseCommand
from automate_core.tenancy.models import Tenant
from automate_datachat import demo
from automate_datachat.role import ensure_role


class Command(DatabaseCommand):
    help = (
        "Create (once) the demo shop tables (customers, products, orders, order lines) with a "
        "few thousand rows for each of the tenants 'demo' and 'demo-b', and grant the data chat "
        "role SELECT on them."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            for number, (slug, name) in enumerate(demo.TENANTS.items(), start=1):
                tenant, _ = Tenant.objects.get_or_create(slug=slug, defaults={"name": name})
                if demo.seed(cursor, tenant.pk, number):
                    self.stdout.write(f"Seeded the demo shop for tenant {slug!r}.")
        try:
            ensure_role()
        except DatabaseError as exc:  # a server where this user may not manage roles
            warning = f"Could not grant the data chat role ({exc}); run datachat_role."
            self.stdout.write(self.style.WARNING(warning))
        self.stdout.write(
            self.style.SUCCESS(
                f"Ask the {demo.SLUG!r} dataset: POST /api/v1/datachat/{demo.SLUG}/ask "
                '{"question": "Revenue by month by product category"}'
            )
        )
