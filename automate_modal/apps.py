from django.apps import AppConfig


class AutomateModalConfig(AppConfig):
    name = "automate_modal"
    default_auto_field = "django.db.models.BigAutoField"
