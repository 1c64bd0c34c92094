"""Вызов синхронного сервиса из асинхронного обработчика.

sync_to_async(thread_sensitive=True) выстраивает все запросы процесса в один поток —
при десятках одновременных апдейтов это узкое место. Сервисы сами владеют
транзакциями и не зависят от потока, поэтому идут в общий пул потоков, а соединение
после вызова возвращается в пул psycopg (иначе его держал бы поток).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

from config.runtime import is_asgi

logger = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")


def _closing(fn: Callable[P, R]) -> Callable[P, R]:
    @functools.wraps(fn)
    def run(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return fn(*args, **kwargs)
        finally:
            for connection in connections.all(initialized_only=True):
                if is_asgi():
                    connection.close()
                else:
                    # В воркере пула нет: закрытие после каждого вызова открывало бы новое соединение
                    connection.close_if_unusable_or_obsolete()

    return run


def db(fn: Callable[P, R]) -> Callable[P, Awaitable[R]]:
    return sync_to_async(_closing(fn), thread_sensitive=False)


@contextmanager
def connection_checked_after() -> Iterator[None]:
    """Долгий внешний вызов (провайдер, загрузка в Telegram), после которого соединение с БД проверяется
    (и при исключении).

    Пока вызов шёл (до минут), соединение могло оборваться: перезапуск или переключение PostgreSQL.
    Мёртвое закрываем — следующий запрос откроет новое. Иначе итог вызова, за который уже заплачено
    (картинка, имя операции Veo) или который пользователь уже видит (file_id), не записался бы, и
    сборщик повторил бы вызов.
    """
    try:
        yield
    finally:
        for conn in connections.all(initialized_only=True):
            if conn.connection is not None and not conn.in_atomic_block and not conn.is_usable():
                logger.warning("database connection %s was lost during a long call, reconnecting", conn.alias)
                conn.close()
