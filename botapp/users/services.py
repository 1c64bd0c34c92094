"""Сервисы пользователей. Синхронные: Telegram-обработчики зовут их через telegram.dbcall.db."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.db import connection, transaction
from django.db.models import Field
from django.utils import timezone

from botapp.billing.lava import lava_payments_anonymise
from botapp.models import ChatLogEntry, ConversationState, Language, TelegramUser

BAN_NOTICE_EVERY = timedelta(days=1)


_UPSERT_FIELDS = ("first_name", "last_name", "username", "language_code", "is_premium")


class UserUpsertSql(NamedTuple):
    """Части upsert пользователя: собираются один раз, а не на каждый апдейт."""

    columns: tuple[str, ...]  # порядок значений user_upsert_params
    casts: tuple[str, ...]  # типы столбцов — для INSERT … SELECT, где литералы без типа
    default_fields: tuple[Field[Any, Any], ...]  # остальные столбцы — значения модели по умолчанию
    on_conflict: str
    returning: str  # все столбцы модели в порядке concrete_fields


@functools.cache
def user_upsert_sql() -> UserUpsertSql:
    fields = {str(field.column): field for field in TelegramUser._meta.concrete_fields}
    default_fields = tuple(
        field
        for column, field in fields.items()
        if column not in ("id", "telegram_id", *_UPSERT_FIELDS, "created_at", "last_seen_at")
    )
    columns = (
        "telegram_id",
        *_UPSERT_FIELDS,
        "created_at",
        "last_seen_at",
        *(str(f.column) for f in default_fields),
    )
    on_conflict = (
        "ON CONFLICT (telegram_id) DO UPDATE SET "
        + ", ".join(f"{name} = excluded.{name}" for name in (*_UPSERT_FIELDS, "last_seen_at"))
        + ", is_blocked = FALSE"
    )
    return UserUpsertSql(
        columns=columns,
        casts=tuple(str(fields[column].cast_db_type(connection)) for column in columns),
        default_fields=default_fields,
        on_conflict=on_conflict,
        returning=", ".join(fields),
    )


def user_upsert_params(
    *,
    telegram_id: int,
    first_name: str = "",
    last_name: str = "",
    username: str = "",
    language_code: str = "",
    is_premium: bool = False,
    now: datetime | None = None,
) -> list[Any]:
    """Значения в порядке UserUpsertSql.columns."""
    now = now or timezone.now()
    values = [first_name[:256], last_name[:256], username[:64], language_code[:16], is_premium]
    defaults = [field.get_default() for field in user_upsert_sql().default_fields]
    return [telegram_id, *values, now, now, *defaults]


def user_from_row(row: Sequence[Any]) -> TelegramUser:
    """Строка RETURNING (все столбцы модели) → объект без лишнего SELECT."""
    return TelegramUser.from_db(
        connection.alias, [f.attname for f in TelegramUser._meta.concrete_fields], row
    )


def user_upsert_from_telegram(
    *,
    telegram_id: int,
    first_name: str = "",
    last_name: str = "",
    username: str = "",
    language_code: str = "",
    is_premium: bool = False,
) -> TelegramUser:
    """Создать или обновить пользователя по данным апдейта одним запросом (горячий путь вебхука).

    Любое сообщение от пользователя означает, что бот не заблокирован.
    """
    spec = user_upsert_sql()
    sql = (
        f"INSERT INTO {TelegramUser._meta.db_table} ({', '.join(spec.columns)}) "  # noqa: S608 — имена из модели
        f"VALUES ({', '.join(['%s'] * len(spec.columns))}) {spec.on_conflict} RETURNING {spec.returning}"
    )
    params = user_upsert_params(
        telegram_id=telegram_id,
        first_name=first_name,
        last_name=last_name,
        username=username,
        language_code=language_code,
        is_premium=is_premium,
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        row = cursor.fetchone()
    return user_from_row(row)


def user_is_blocked(*, telegram_id: int) -> bool:
    return TelegramUser.objects.filter(telegram_id=telegram_id, is_blocked=True).exists()


def user_set_blocked(*, telegram_id: int, blocked: bool) -> None:
    """my_chat_member или 403 при отправке: пользователь заблокировал/разблокировал бота."""
    TelegramUser.objects.filter(telegram_id=telegram_id).update(is_blocked=blocked)


def user_set_language(*, user: TelegramUser, language: str) -> TelegramUser:
    user.language = Language(language)
    user.save(update_fields=["language"])
    return user


def user_toggle_setting(*, user: TelegramUser, name: str) -> TelegramUser:
    """Переключить булеву настройку из /settings (список разрешённых — здесь)."""
    if name not in ("send_originals_as_files", "skip_confirmation"):
        raise ValueError(name)
    setattr(user, name, not getattr(user, name))
    user.save(update_fields=[name])
    return user


def user_remember_start_payload(*, user: TelegramUser, payload: str) -> None:
    """ref_<code> / promo_<code> сохраняются для биллинга; прочее игнорируется."""
    if payload.startswith(("ref_", "promo_")) and not user.start_payload:
        user.start_payload = payload[:64]
        user.save(update_fields=["start_payload"])


def user_ban_notice_due(*, user: TelegramUser) -> bool:
    """Забаненному — одно вежливое сообщение в сутки; атомарно, без гонок между процессами."""
    now = timezone.now()
    updated = (
        TelegramUser.objects.filter(pk=user.pk)
        .exclude(ban_notice_at__gt=now - BAN_NOTICE_EVERY)
        .update(ban_notice_at=now)
    )
    return updated == 1


def conversation_get(*, user: TelegramUser) -> ConversationState:
    state, _ = ConversationState.objects.get_or_create(user=user)
    return state


def conversation_set(*, user: TelegramUser, state: str, data: dict[str, Any] | None = None) -> None:
    """Записать шаг диалога одним оператором (update_or_create — четыре: транзакция, SELECT FOR UPDATE…)."""
    table = ConversationState._meta.db_table
    data_field = ConversationState._meta.get_field("data")
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, state, data, updated_at) VALUES (%s, %s, %s, %s) "  # noqa: S608
            "ON CONFLICT (user_id) DO UPDATE SET state = excluded.state, data = excluded.data, "
            "updated_at = excluded.updated_at",
            [user.pk, state, data_field.get_db_prep_save(data or {}, connection), timezone.now()],
        )


def conversation_ensure(*, user: TelegramUser) -> None:
    """Строка шага диалога есть (пустая, если не было): её можно блокировать SELECT … FOR UPDATE."""
    table = ConversationState._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, state, data, updated_at) VALUES (%s, '', '{{}}', %s) "  # noqa: S608
            "ON CONFLICT (user_id) DO NOTHING",
            [user.pk, timezone.now()],
        )


def conversation_from_row(row: Sequence[Any]) -> ConversationState:
    """Строка (id, user_id, state, data, updated_at) из сырого SQL → объект; data — через конвертер поля."""
    pk, user_id, state, data, updated_at = row
    data_field = ConversationState._meta.get_field("data")
    # Выражение конвертеру нужно только для KeyTransform; здесь столбец целиком
    converted = data_field.from_db_value(data, None, connection)  # type: ignore[arg-type]
    return ConversationState.from_db(
        connection.alias,
        ["id", "user_id", "state", "data", "updated_at"],
        [pk, user_id, state, converted, updated_at],
    )


def chat_log_record(
    *,
    telegram_id: int,
    direction: str,
    text: str = "",
    media_type: str = "",
    file_id: str = "",
    message_id: int | None = None,
    is_support: bool = False,
) -> None:
    """Одна строка журнала; пользователь ищется тем же запросом (неизвестный — не пишется)."""
    table = ChatLogEntry._meta.db_table
    users = TelegramUser._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (user_id, direction, text, media_type, file_id, message_id, is_support, "  # noqa: S608
            f"created_at) SELECT id, %s, %s, %s, %s, %s, %s, %s FROM {users} WHERE telegram_id = %s",
            [direction, text, media_type, file_id[:256], message_id, is_support, timezone.now(), telegram_id],
        )


def chat_log_record_many(*, rows: Sequence[dict[str, Any]]) -> None:
    """Несколько строк журнала одним INSERT (исходящие апдейта пишутся вместе с отметкой done).

    rows — поля chat_log_record, created_at — момент отправки (порядок в переписке).
    """
    if not rows:
        return
    sql, params = chat_log_insert_sql(rows)
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def chat_log_insert_sql(rows: Sequence[dict[str, Any]]) -> tuple[str, list[Any]]:
    """INSERT строк журнала и его параметры (вебхук ставит его в один оператор с отметкой done)."""
    table = ChatLogEntry._meta.db_table
    users = TelegramUser._meta.db_table
    values = ", ".join(["(%s, %s, %s, %s, %s, %s, %s, %s)"] * len(rows))
    params: list[Any] = []
    for row in rows:
        params += [
            row["telegram_id"],
            row["direction"],
            row.get("text", ""),
            row.get("media_type", ""),
            row.get("file_id", "")[:256],
            row.get("message_id"),
            row.get("is_support", False),
            row["created_at"],
        ]
    # Столбцы VALUES зовутся column1…column8 и в PostgreSQL, и в SQLite; тип message_id — приведением,
    # иначе столбец из одних NULL вышел бы текстовым
    sql = (
        f"INSERT INTO {table} (user_id, direction, text, media_type, file_id, message_id, is_support, "  # noqa: S608
        "created_at) SELECT u.id, v.column2, v.column3, v.column4, v.column5, CAST(v.column6 AS bigint), "
        f"v.column7, v.column8 FROM (VALUES {values}) AS v JOIN {users} u ON u.telegram_id = v.column1"
    )
    return sql, params


def anonymised_id(telegram_id: int) -> str:
    return "deleted-" + hashlib.sha256(str(telegram_id).encode()).hexdigest()[:12]


@transaction.atomic
def user_delete_data(*, user: TelegramUser) -> None:
    """/delete_me: стереть личное (переписку, состояние, имена); строки учёта остаются обезличенными.

    Проводки и платежи остаются (учёт денег), но без имени и e-mail (и в сохранённых ответах lava);
    солёный хэш приветственного бонуса тоже остаётся — иначе удаление давало бы второй бонус.
    Медиа и промпты стирает generation.retention.user_media_erase.
    """
    ChatLogEntry.objects.filter(user=user).delete()
    ConversationState.objects.filter(user=user).delete()
    TelegramUser.objects.filter(pk=user.pk).update(
        first_name="",
        last_name="",
        username="",
        start_payload="",
        language="",
        lava_email="",
    )
    lava_payments_anonymise(user=user)
