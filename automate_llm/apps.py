from django.apps import AppConfig


class AutomateLLMConfig(AppConfig):
    name = "automate_llm"
    verbose_name = "LLM gateway"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        # Registers the llm.* workflow step types.
        from automate_llm import agent, steps  # noqa: F401
