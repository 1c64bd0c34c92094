"""Очереди брокера прогона тестов: что тест опубликовал — посчитать и убрать.

Сообщения, оставленные тестами без воркера, лежат в очередях прогона до конца сессии, и
/api/health живого воркера позже называет очередь отстающей (SLA).
"""

from __future__ import annotations

from kombu import Queue


def broker_purge(queue: str) -> int:
    """Убрать все сообщения очереди префикса этого прогона; сколько их было."""
    from config.celery import app

    with app.connection_for_write() as connection:
        bound = Queue(queue, routing_key=queue).bind(connection.default_channel)
        return int(bound.purge() or 0)
