from django.apps import AppConfig


class AutomateDatachatConfig(AppConfig):
    name = "automate_datachat"
    verbose_name = "Data chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The step types, outbox handlers and maintenance tasks (also for in-process runs: the
        # embedded server's worker, run_until_idle in tests).
        from automate_datachat import steps, tasks  # noqa: F401
        from automate_datachat.conf import datachat_settings

        if datachat_settings.DEMO_DATASET:
            from automate_datachat import demo

            demo.register()
