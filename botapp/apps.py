from django.apps import AppConfig


class BotappConfig(AppConfig):
    name = "botapp"
    verbose_name = "NanoBanana bot"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from botapp.ops import startup

        startup.log_embedded_defaults()
        startup.ensure_local_dirs()
