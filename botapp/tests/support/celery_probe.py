"""Задача только для тестов: пишет в логгер задач Celery (get_task_logger) и в логгер billiard.

Воркер импортирует модуль лишь по --include из теста; в CELERY_IMPORTS его нет.
"""

from __future__ import annotations

from celery import shared_task
from celery.utils.log import get_multiprocessing_logger, get_task_logger

logger = get_task_logger(__name__)


@shared_task(name="fast.test_probe_log")
def probe_log(message: str) -> None:
    logger.warning("probe: %s", message)
    # Логгер пула процессов (multiprocessing): у него свой обработчик и propagate выключен
    pool_logger = get_multiprocessing_logger()
    assert pool_logger is not None  # billiard есть всегда, пока пул — prefork
    pool_logger.error("probe-mp: %s", message)
