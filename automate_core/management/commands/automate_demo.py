"""Create the demo tenant, an admin user and an API key; secrets are printed once. Then run
every installed app's own ``<name>_demo`` command (data chat's shop, Modal's GPU step, ...), in
``INSTALLED_APPS`` order, so an app adds to the demo without core knowing it."""

from __future__ import annotations

import secrets
from typing import Any

from django.apps import apps
from django.contrib.auth import get_user_model
from django.core.management import call_command, get_commands
from django.db import transaction

from automate_core.management.base import DatabaseCommand
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import APIKey, Tenant, TenantMembership
from automate_core.workflows.models import Automation

DEMO_GRAPH = {
    "start": "thank",
    "steps": {
        "thank": {
            "type": "connector",
            "connector": "echo",
            "action": "echo",
            "input": {"message": "Thanks for order {{ event.payload.order_id }}!"},
            "next": "done",
        },
        "done": {
            "type": "complete",
            "result": {"sent": "{{ steps.thank.output.data.params.message }}"},
        },
    },
}


def app_demo_commands() -> list[str]:
    """The other installed apps' ``*_demo`` commands, in ``INSTALLED_APPS`` order."""
    order = {config.name: n for n, config in enumerate(apps.get_app_configs())}
    found = [
        (order.get(app, len(order)), name)
        for name, app in get_commands().items()
        if name.endswith("_demo") and name != "automate_demo" and app in order
    ]
    return [name for _, name in sorted(found)]


class Command(DatabaseCommand):
    help = "Create (once) a demo tenant, an 'admin' superuser and an API key."

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            tenant, _ = Tenant.objects.get_or_create(slug="demo", defaults={"name": "Demo"})
            password = self._ensure_admin(tenant)
            raw_key = self._ensure_key(tenant)
            self._ensure_automation(tenant)
        out = self.stdout
        if password:
            out.write(self.style.SUCCESS(f"Admin user: admin / {password}  (shown once)"))
        else:
            out.write(
                "Admin user 'admin' exists (change its password: manage.py changepassword admin)"
            )
        if raw_key:
            out.write(self.style.SUCCESS(f"Demo API key: {raw_key}  (shown once)"))
        else:
            out.write("Demo API key exists (issue another in the admin or POST /api/v1/api-keys)")
        for name in app_demo_commands():
            call_command(name, stdout=self.stdout, stderr=self.stderr)

    def _ensure_admin(self, tenant: Tenant) -> str | None:
        User = get_user_model()
        user = User.objects.filter(username="admin").first()
        password = None
        if user is None:
            password = secrets.token_urlsafe(12)
            user = User.objects.create_superuser("admin", "admin@example.com", password)
        TenantMembership.objects.get_or_create(
            tenant=tenant, user=user, defaults={"role": TenantMembership.Role.OWNER}
        )
        return password

    def _ensure_automation(self, tenant: Tenant) -> None:
        """Big orders get a thank-you: POST an order.paid event with amount > 100 to see a run."""
        if Automation.objects.for_tenant(tenant).filter(slug="big-orders").exists():
            return
        automation = Automation.objects.create(tenant=tenant, name="Big orders", slug="big-orders")
        automation.new_version(DEMO_GRAPH).publish()
        Trigger.objects.create(
            tenant=tenant,
            name="order paid over 100",
            event_type="order.paid",
            condition={">": [{"var": "payload.amount"}, 100]},
            automation=automation,
        )

    def _ensure_key(self, tenant: Tenant) -> str | None:
        if APIKey.objects.for_tenant(tenant).filter(name="demo").exists():
            return None
        _, raw = APIKey.issue(tenant=tenant, name="demo")
        return raw
