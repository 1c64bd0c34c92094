"""Приложение Celery. Настройки — в config/settings/celery.py (пространство имён CELERY_)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")

from botapp.ops.celery_signals import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)
