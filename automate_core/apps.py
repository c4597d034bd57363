from django.apps import AppConfig


class AutomateCoreConfig(AppConfig):
    name = "automate_core"
    verbose_name = "Automate"
    default_auto_field = "django.db.models.BigAutoField"
