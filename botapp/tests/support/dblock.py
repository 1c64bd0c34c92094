"""Блокировка в тестовой БД из отдельного соединения: «зависший» сервис для процессов стенда."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import psycopg
from django.db import connection


@contextmanager
def holding(sql: str, params: list[object] | None = None) -> Iterator[psycopg.Connection]:
    """Выполнить sql (например, SELECT … FOR UPDATE или LOCK TABLE) и держать транзакцию открытой.

    Процессы стенда, которым нужна эта строка или таблица, ждут, пока блок не выйдет (или пока
    тест не закоммитит сам). Соединение — своё: у теста в autocommit блокировка сразу снялась бы.
    """
    params_ = {k: v for k, v in connection.get_connection_params().items() if k != "cursor_factory"}
    with psycopg.connect(**params_) as holder:
        holder.execute(sql, params)
        yield holder


def awaited() -> bool:
    """Кто-нибудь в тестовой БД ждёт блокировку (процесс стенда дошёл до «зависшего» места)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        )
        return int(cursor.fetchone()[0]) > 0
