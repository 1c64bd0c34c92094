"""Приложение Celery. Настройки — в config/settings/celery.py (пространство имён CELERY_)."""

import os
from typing import Any

from celery import Celery
from celery.signals import after_setup_logger, after_setup_task_logger
from celery.utils.log import get_multiprocessing_logger

from config.observability import redact_log_handlers

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

app = Celery("config")
app.config_from_object("django.conf:settings", namespace="CELERY")


def _redact_worker_loggers(logger: Any, **kwargs: Any) -> None:
    """Root и логгер пула процессов (multiprocessing: свой обработчик, без propagate)."""
    redact_log_handlers(logger)
    pool_logger = get_multiprocessing_logger()
    if pool_logger is not None:
        redact_log_handlers(pool_logger)


# Обработчики, которые Celery ставит сам (celery.task и пул — без propagate), тоже вырезают секреты
after_setup_logger.connect(_redact_worker_loggers)
after_setup_task_logger.connect(redact_log_handlers)

from botapp.ops.celery_signals import HeartbeatStep  # noqa: E402

app.steps["worker"].add(HeartbeatStep)
