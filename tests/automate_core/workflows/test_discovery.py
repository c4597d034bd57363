"""Apps' automations are registered at app ready in every process: a process that only saves
models knows the guide's workflows (tests/testapp/automations/) without importing them."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import timedelta

import pytest

from automate_core.events.models import Event
from automate_core.outbox.models import OutboxJob
from tests.automate_core.outbox.conftest import ROOT, worker_env  # noqa: F401  (a fixture)

pytestmark = pytest.mark.e2e

REGISTERED = """
import json
from automate_core.workflows import registry
print(json.dumps({
    "workflows": sorted(w.name for w in registry.for_event("checkin_due")),
    "manual": registry.get("reindex_listing") is not None,
}))
"""
SAVE_RESERVATION = """
from datetime import timedelta
from django.utils import timezone
from tests.testapp.models import Reservation
Reservation.objects.create(checkin_at=timezone.now() + timedelta(days=2), status="confirmed")
"""


def django_shell(env: dict[str, str], code: str) -> str:
    """Run ``code`` in a fresh ``manage.py shell`` process; its standard output."""
    done = subprocess.run(  # noqa: S603  (our interpreter and manage.py)
        [sys.executable, str(ROOT / "manage.py"), "shell", "-c", code],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_fresh_process_registers_the_automations_package_at_setup(worker_env):  # noqa: F811
    registered = json.loads(django_shell(worker_env, REGISTERED).strip().splitlines()[-1])
    assert registered == {"workflows": ["checkin_due:PreArrivalReminder"], "manual": True}


def test_a_process_saving_a_model_fires_its_event_early_for_a_negative_offset(worker_env):  # noqa: F811
    django_shell(worker_env, SAVE_RESERVATION)
    event = Event.objects.get(type="checkin_due")
    [due] = OutboxJob.objects.filter(kind="event.due")
    assert due.payload["phase"] == "early"
    assert due.available_at == event.occurs_at - timedelta(minutes=60)
