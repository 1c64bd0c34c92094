"""Пульс процессов в общем кэше (Redis или файловый кэш локально).

Кэш, а не база: главный процесс воркера Celery не должен открывать соединения
с БД до fork дочерних процессов.
"""

from __future__ import annotations

import socket
import time
from typing import Any

from django.core.cache import cache

WORKER = "worker"
BEAT = "beat"
BEAT_TASK = "beat-task"
_TTL_S = 24 * 3600


def _key(component: str) -> str:
    return f"heartbeat:{component}"


def heartbeat_record(*, component: str, **info: Any) -> None:
    """Общий ключ (для /api/health) и ключ этого хоста (для HEALTHCHECK его контейнера)."""
    value = {"at": time.time(), **info}
    cache.set_many(
        {_key(component): value, _key(f"{component}:{socket.gethostname()}"): value}, timeout=_TTL_S
    )


def heartbeat_get(*, component: str, this_host: bool = False) -> dict[str, Any] | None:
    key = _key(f"{component}:{socket.gethostname()}" if this_host else component)
    value = cache.get(key)
    return value if isinstance(value, dict) else None


def heartbeat_age(*, component: str, this_host: bool = False) -> float | None:
    """Секунды с последнего пульса или None, если пульса не было."""
    value = heartbeat_get(component=component, this_host=this_host)
    return None if value is None else max(0.0, time.time() - float(value["at"]))
