"""make run's demo: core's automate_demo runs each installed app's own *_demo command."""

from __future__ import annotations

import io

import pytest
from django.core.management import call_command

from automate_core.management.commands.automate_demo import app_demo_commands


def test_app_demo_commands_are_found_in_installed_apps_order():
    assert app_demo_commands() == ["datachat_demo", "modal_demo"]


@pytest.mark.django_db
def test_automate_demo_runs_the_apps_demos():
    from automate_modal.models import ModalEndpoint

    out = io.StringIO()
    call_command("automate_demo", stdout=out)
    assert ModalEndpoint.objects.filter(tenant__slug="demo", slug="word-count").exists()
    assert "GPU demo" in out.getvalue() and "datachat" in out.getvalue()
