from django.apps import AppConfig


class SandboxConfig(AppConfig):
    name = "botapp.sandbox"
    label = "sandbox"
    verbose_name = "Песочница Telegram"
    default_auto_field = "django.db.models.BigAutoField"
