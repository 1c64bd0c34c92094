"""Входящий ящик апдейтов: ровно одна обработка на update_id.

Захват — один оператор INSERT … ON CONFLICT DO UPDATE … WHERE: строку получает
либо первый, либо тот, кто пришёл после истечения аренды зависшей обработки.
Работает и в PostgreSQL, и во встроенном SQLite (≥ 3.35).
"""

from __future__ import annotations

from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

from botapp.models import InboxUpdate

PRUNE_AFTER = timedelta(hours=48)

_CLAIM_SQL = f"""
INSERT INTO {InboxUpdate._meta.db_table}
    (update_id, update_type, status, attempts, lease_until, received_at)
VALUES (%s, %s, 'processing', 1, %s, %s)
ON CONFLICT (update_id) DO UPDATE SET
    attempts = {InboxUpdate._meta.db_table}.attempts + 1,
    lease_until = excluded.lease_until
WHERE {InboxUpdate._meta.db_table}.status = 'processing'
  AND {InboxUpdate._meta.db_table}.lease_until < %s
RETURNING id
"""  # noqa: S608 — имя таблицы из модели, значения — параметрами


def inbox_claim(*, update_id: int, update_type: str) -> bool:
    """True — этот процесс обрабатывает апдейт; False — уже обработан или обрабатывается."""
    now = timezone.now()
    lease_until = now + timedelta(seconds=settings.INBOX_LEASE_S)
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM_SQL, [update_id, update_type[:32], lease_until, now, now])
        return cursor.fetchone() is not None


def inbox_complete(*, update_id: int) -> None:
    InboxUpdate.objects.filter(update_id=update_id).update(
        status=InboxUpdate.Status.DONE, processed_at=timezone.now()
    )


def inbox_prune() -> int:
    """Удалить записи старше 48 ч: Telegram повторяет доставку не дольше суток."""
    deleted, _ = InboxUpdate.objects.filter(received_at__lt=timezone.now() - PRUNE_AFTER).delete()
    return deleted
