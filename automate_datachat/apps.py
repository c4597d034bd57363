from django.apps import AppConfig
from django.db.models.signals import post_migrate


class AutomateDatachatConfig(AppConfig):
    name = "automate_datachat"
    verbose_name = "Data chat"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # The step types, outbox handlers and maintenance tasks (also for in-process runs: the
        # embedded server's worker, run_until_idle in tests).
        from automate_datachat import steps, tasks  # noqa: F401
        from automate_datachat.conf import datachat_settings
        from automate_datachat.role import ensure_role_after_migrate

        # The read-only role queries run as (see automate_datachat.role); once per migrate.
        post_migrate.connect(ensure_role_after_migrate, sender=self)

        if datachat_settings.DEMO_DATASET:
            from automate_datachat import demo

            demo.register()
