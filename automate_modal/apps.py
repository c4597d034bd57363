from django.apps import AppConfig


class AutomateModalConfig(AppConfig):
    name = "automate_modal"
    verbose_name = "Modal GPU jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automate_modal import steps, tasks  # noqa: F401  step type and outbox handlers
