from typing import Any

from django.apps import AppConfig
from django.db.models.signals import post_save


class AutomateModalConfig(AppConfig):
    name = "automate_modal"
    verbose_name = "Modal GPU jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automate_core.executions.models import Execution
        from automate_modal import steps, tasks  # noqa: F401  step type and outbox handlers

        post_save.connect(_run_saved, sender=Execution, dispatch_uid="automate_modal.run_ended")


def _run_saved(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A run that ended with GPU jobs still running has their calls cancelled."""
    if instance.is_finished:
        from automate_modal.services import run_ended

        run_ended(instance.pk)
