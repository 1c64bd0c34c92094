"""Приложение Celery. Настройки — в config/settings/celery.py (пространство имён CELERY_)."""

import os

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger

from config.observability import redact_log_handlers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")
# Обработчики, которые Celery ставит сам (celery.task — без propagate), тоже вырезают секреты
after_setup_logger.connect(redact_log_handlers)
after_setup_task_logger.connect(redact_log_handlers)

from botapp.ops.celery_signals import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)
