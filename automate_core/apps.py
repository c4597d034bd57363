from django.apps import AppConfig


class AutomateCoreConfig(AppConfig):
    name = "automate_core"
    verbose_name = "Automate"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from automate_core.tracing import install_log_record_factory

        install_log_record_factory()

        # System checks, and the outbox handlers (also for in-process runs): registered on import.
        from automate_core import checks, tasks  # noqa: F401
        from automate_core.events import definitions, dispatch
        from automate_core.workflows.subscriber import engine_subscriber

        definitions.connect()
        dispatch.subscribe(engine_subscriber)

        # Every app's workflows and @on_event handlers, in every process (web, worker, shell):
        # saving a model needs them to know how early its scheduled events must fire.
        from automate_core.discovery import discover_automations

        discover_automations()
