from django.apps import AppConfig


class AutomateDatachatConfig(AppConfig):
    name = "automate_datachat"
    default_auto_field = "django.db.models.BigAutoField"
