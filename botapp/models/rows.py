"""Строки моделей сырым SQL на горячих путях конвейера.

Сборка запроса ORM (компилятор, lookups, select_related) стоит в 5–8 раз больше самого запроса:
на 2 ядрах это ~1 мс CPU на чтение задания, а их несколько на каждое задание. Здесь SQL пишется
один раз, имена таблиц и столбцов берутся из _meta, значения — параметрами, а объект собирается
так же, как это делает ORM: конвертеры базы и поля (JSON, даты SQLite), затем Model.from_db.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from django.db import connection, models

M = TypeVar("M", bound=models.Model)

Converter = Callable[[Any, Any, Any], Any]
Layout = tuple[list[str], list[tuple[int, Any, list[Converter]]]]


@functools.cache
def _layout(model: type[models.Model], vendor: str) -> Layout:
    """attname всех столбцов и конвертеры тех, у кого они есть (как в SQLCompiler.get_converters)."""
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        expression = field.get_col(model._meta.db_table)
        found = connection.ops.get_db_converters(expression) + expression.get_db_converters(connection)
        if found:
            converters.append((index, expression, found))
    return [field.attname for field in fields], converters


def columns(model: type[models.Model], alias: str) -> str:
    """Все столбцы модели в порядке concrete_fields: «alias."col", …»."""
    quote = connection.ops.quote_name
    return ", ".join(f"{alias}.{quote(str(field.column))}" for field in model._meta.concrete_fields)


def table(model: type[models.Model]) -> str:
    return connection.ops.quote_name(model._meta.db_table)


def width(model: type[models.Model]) -> int:
    return len(model._meta.concrete_fields)


def from_row(model: type[M], row: Sequence[Any]) -> M:
    """Строка со столбцами columns(model) → объект, как его собрал бы ORM."""
    names, converters = _layout(model, connection.vendor)
    values = list(row)
    for index, expression, found in converters:
        for convert in found:
            values[index] = convert(values[index], expression, connection)
    return model.from_db(connection.alias, names, values)


def _insert_sql(obj: models.Model) -> tuple[str, list[Any], dict[str, str]]:
    """INSERT всех столбцов obj, кроме первичного ключа; значения готовит само поле, как при save()."""
    meta = obj._meta
    quote = connection.ops.quote_name
    fields = [field for field in meta.concrete_fields if not field.primary_key]
    values = [field.get_db_prep_save(field.pre_save(obj, add=True), connection) for field in fields]
    sql = (
        f"INSERT INTO {quote(meta.db_table)} ({', '.join(quote(str(f.column)) for f in fields)}) "  # noqa: S608
        f"VALUES ({', '.join(['%s'] * len(fields))})"
    )
    return sql, values, {field.name: str(field.column) for field in fields}


def insert(obj: M) -> M:
    """obj.save() для новой строки одним INSERT … RETURNING id, без компилятора ORM (горячий путь)."""
    sql, values, _columns = _insert_sql(obj)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} RETURNING {connection.ops.quote_name(str(obj._meta.pk.column))}", values)
        row = cursor.fetchone()
    assert row is not None
    obj.pk = row[0]
    obj._state.adding, obj._state.db = False, connection.alias
    return obj


def upsert(obj: models.Model, *, unique: Sequence[str], update: Sequence[str]) -> None:
    """INSERT … ON CONFLICT (unique) DO UPDATE одним оператором.

    bulk_create(update_conflicts=True) делает то же, но в автокоммите оборачивает вставку в
    BEGIN/COMMIT: три обращения к базе вместо одного. Значения готовит само поле (pre_save,
    get_db_prep_save), как при save(): auto_now_add, JSON, даты.
    """
    quote = connection.ops.quote_name
    sql, values, column = _insert_sql(obj)
    updates = ", ".join(f"{quote(column[name])} = EXCLUDED.{quote(column[name])}" for name in update)
    conflict = ", ".join(quote(column[name]) for name in unique)
    with connection.cursor() as cursor:
        cursor.execute(f"{sql} ON CONFLICT ({conflict}) DO UPDATE SET {updates}", values)
