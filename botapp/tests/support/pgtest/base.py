"""Бэкенд PostgreSQL для тестов: очистка таблиц через DELETE вместо TRUNCATE.

Транзакционный тест (живой сервер, воркер, гонки) после себя очищает базу командой flush.
TRUNCATE шестидесяти таблиц — это новые файлы для каждой таблицы и индекса, ~0,4–0,5 с на тест;
DELETE почти пустых таблиц в одной транзакции — единицы миллисекунд. Внешние ключи Django
отложенные (DEFERRABLE INITIALLY DEFERRED): порядок удаления не важен, проверка — при COMMIT.
Сброс последовательностей и CASCADE — как у Django (TRUNCATE): тестам они не нужны.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db.backends.postgresql import base, operations


class DatabaseOperations(operations.DatabaseOperations):
    def sql_flush(
        self, style: Any, tables: Sequence[str], *, reset_sequences: bool = False, allow_cascade: bool = False
    ) -> list[str]:
        if not tables or reset_sequences or allow_cascade:
            return super().sql_flush(
                style, tables, reset_sequences=reset_sequences, allow_cascade=allow_cascade
            )
        # Имена таблиц — из интроспекции Django, в кавычках quote_name, как у TRUNCATE в Django
        deletes = [f"DELETE FROM {self.quote_name(table)}" for table in tables]  # noqa: S608
        return ["SET CONSTRAINTS ALL DEFERRED", *deletes]


class DatabaseWrapper(base.DatabaseWrapper):
    ops_class = DatabaseOperations
