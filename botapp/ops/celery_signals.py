"""Сигналы Celery: пульс воркера, отметка beat, время публикации, сторож beat."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from typing import Any

from celery import bootsteps
from celery.signals import beat_init, before_task_publish, task_postrun, task_prerun
from django.conf import settings

from botapp.ops import heartbeats

logger = logging.getLogger(__name__)

# Заголовок с моментом публикации: по нему health видит возраст старейшего сообщения
PUBLISHED_AT_HEADER = "nb_published_at"

_in_beat = False


def _repeat(name: str, interval: float, fn: Any) -> threading.Thread:
    """Фоновый цикл; ошибки логируются, цикл не умирает."""

    def loop() -> None:
        while True:
            try:
                fn()
            except Exception:
                logger.exception("%s failed", name)
            time.sleep(interval)

    thread = threading.Thread(target=loop, name=name, daemon=True)
    thread.start()
    return thread


class HeartbeatStep(bootsteps.StartStopStep):
    """Главный процесс воркера пишет пульс по таймеру: занятый пул не выглядит мёртвым."""

    requires = ("celery.worker.components:Pool",)

    def start(self, worker: Any) -> None:
        host = getattr(worker, "hostname", None) or socket.gethostname()
        _repeat(
            "worker-heartbeat",
            settings.WORKER_HEARTBEAT_INTERVAL_S,
            lambda: heartbeats.heartbeat_record(component=heartbeats.WORKER, host=host, pid=os.getpid()),
        )


@task_prerun.connect
@task_postrun.connect
def _release_old_connections(**_: Any) -> None:
    """Соединения с БД живут между задачами, как между запросами Django (CELERY_DB_REUSE_MAX).

    Как request_started/finished: закрыть устаревшее (CONN_MAX_AGE) и сломанное — следующая задача
    откроет новое, а CONN_HEALTH_CHECKS проверит переиспользуемое перед первым запросом.
    """
    from django.db import close_old_connections

    close_old_connections()


@before_task_publish.connect
def _stamp_and_tick(headers: dict[str, Any] | None = None, **_: Any) -> None:
    if headers is not None:
        headers.setdefault(PUBLISHED_AT_HEADER, time.time())
    if _in_beat:
        # beat отмечает тик, когда действительно публикует задачу по расписанию
        heartbeats.heartbeat_record(component=heartbeats.BEAT, pid=os.getpid())


@beat_init.connect
def _start_beat_watchdog(**_: Any) -> None:
    global _in_beat
    _in_beat = True
    heartbeats.heartbeat_record(component=heartbeats.BEAT, pid=os.getpid())
    from botapp.ops.watchdog import watchdog_check

    _repeat("beat-watchdog", settings.BEAT_WATCHDOG_INTERVAL_S, watchdog_check)
