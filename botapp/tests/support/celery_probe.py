"""Задача только для тестов: пишет в логгер задач Celery (get_task_logger).

Воркер импортирует модуль лишь по --include из теста; в CELERY_IMPORTS его нет.
"""

from __future__ import annotations

from celery import shared_task
from celery.utils.log import get_task_logger

logger = get_task_logger(__name__)


@shared_task(name="fast.test_probe_log")
def probe_log(message: str) -> None:
    logger.warning("probe: %s", message)
