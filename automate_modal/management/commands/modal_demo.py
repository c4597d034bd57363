"""Add a GPU step to the demo tenant: a ``local``-backend endpoint and an automation using it.

``automate_demo`` runs it after its own demo (every app's ``*_demo`` command). POST a
``texts.submitted`` event whose payload has ``texts`` (a list of strings) and the run spawns
``automate_modal.demo.word_count`` in a subprocess, waits with no worker held, and completes
with the word counts. Running it again changes nothing.
"""

from __future__ import annotations

from typing import Any

from django.db import transaction

from automate_core.management.base import DatabaseCommand
from automate_core.rules.models import Trigger
from automate_core.tenancy.models import Tenant
from automate_core.workflows.models import Automation
from automate_modal.models import GPU, ModalEndpoint

ENDPOINT = "word-count"
AUTOMATION = "gpu-word-count"
EVENT = "texts.submitted"
GRAPH = {
    "start": "count",
    "steps": {
        "count": {
            "type": "modal.run",
            "endpoint": ENDPOINT,
            "input": {"texts": "{{ event.payload.texts }}"},
            "next": "done",
        },
        "done": {
            "type": "complete",
            "result": {
                "counts": "{{ steps.count.output.output.counts }}",
                "gpu_seconds": "{{ steps.count.output.gpu_seconds }}",
            },
        },
    },
}


class Command(DatabaseCommand):
    help = "Add a local GPU endpoint and an automation that uses modal.run to the demo tenant."

    def handle(self, *args: Any, **options: Any) -> None:
        tenant = Tenant.objects.filter(slug="demo").first()
        if tenant is None:
            self.stdout.write("No demo tenant: run manage.py automate_demo first.")
            return
        with transaction.atomic():
            ModalEndpoint.objects.get_or_create(
                tenant=tenant,
                slug=ENDPOINT,
                defaults={
                    "name": "Word count (local)",
                    "function_name": "automate_modal.demo.word_count",
                    "backend": "local",
                    "gpu": GPU.T4,
                    "timeout": 60,
                },
            )
            if not Automation.objects.for_tenant(tenant).filter(slug=AUTOMATION).exists():
                automation = Automation.objects.create(
                    tenant=tenant, name="GPU word count", slug=AUTOMATION
                )
                automation.new_version(GRAPH).publish()
                Trigger.objects.create(
                    tenant=tenant,
                    name="texts submitted",
                    event_type=EVENT,
                    automation=automation,
                )
        self.stdout.write(
            f'GPU demo: POST a "{EVENT}" event with {{"texts": ["..."]}} to run modal.run '
            f"on the local backend"
        )
