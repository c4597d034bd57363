from django.apps import AppConfig


class AutomateLLMConfig(AppConfig):
    name = "automate_llm"
    verbose_name = "LLM gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the llm.* workflow step types and the llm.record outbox handler (also for
        # in-process runs: the embedded server's worker, run_until_idle in tests).
        from automate_llm import agent, steps, tasks  # noqa: F401
