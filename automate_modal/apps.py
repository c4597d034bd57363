from django.apps import AppConfig


class AutomateModalConfig(AppConfig):
    name = "automate_modal"
    verbose_name = "Modal GPU jobs"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automate_modal import tasks  # noqa: F401  outbox handlers
