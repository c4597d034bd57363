from django.apps import AppConfig


class AutomateLLMConfig(AppConfig):
    name = "automate_llm"
    default_auto_field = "django.db.models.BigAutoField"
