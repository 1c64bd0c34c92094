"""Чтение рассылок: аудитория (запрос пользователей), прогресс по статусам, список."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from botapp.models import Payment, TelegramUser
from dashboard.models import Broadcast, BroadcastRecipient, StaffProfile

LIST_LIMIT = 100

# /delete_me — просьба забыть человека: рассылок ему больше нет, пока он сам не напишет боту снова
# (любой апдейт двигает last_seen_at позже data_erased_at)
NOT_OPTED_OUT = Q(data_erased_at__isnull=True) | Q(last_seen_at__gt=F("data_erased_at"))


def broadcast_audience(
    *, audience: str, language: str = "", active_days: int | None = None, ids: Sequence[int] = ()
) -> QuerySet[TelegramUser]:
    """Кому уйдёт рассылка: забаненные, заблокировавшие бота и стёршие свои данные исключены всегда."""
    users = TelegramUser.objects.filter(NOT_OPTED_OUT, is_banned=False, is_blocked=False)
    if audience == Broadcast.Audience.LANGUAGE:
        # Как TelegramUser.effective_language: выбранный язык важнее языка клиента
        russian_client = Q(language_code="") | Q(language_code__startswith="ru")
        if language == "ru":
            return users.filter(Q(language="ru") | (Q(language="") & russian_client))
        return users.filter(Q(language=language) | (Q(language="") & ~russian_client))
    if audience == Broadcast.Audience.PAID:
        return users.filter(Exists(Payment.objects.filter(user=OuterRef("pk"))))
    if audience == Broadcast.Audience.ACTIVE:
        return users.filter(last_seen_at__gte=timezone.now() - timedelta(days=active_days or 0))
    if audience == Broadcast.Audience.IDS:
        return users.filter(telegram_id__in=list(ids))
    return users


def broadcast_audience_of(*, broadcast: Broadcast) -> QuerySet[TelegramUser]:
    return broadcast_audience(
        audience=broadcast.audience,
        language=broadcast.audience_language,
        active_days=broadcast.audience_active_days,
        ids=[int(value) for value in broadcast.audience_ids],
    )


def broadcast_progress(*, broadcast_id: int) -> dict[str, Any]:
    """Статус рассылки и число получателей по статусам (для опроса страницей раз в 2 с)."""
    status = Broadcast.objects.filter(pk=broadcast_id).values_list("status", flat=True).first()
    counts = dict(
        BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        .values_list("status")
        .annotate(n=Count("pk"))
        .values_list("status", "n")
    )
    by_status = {value: int(counts.get(value, 0)) for value in BroadcastRecipient.Status.values}
    return {"status": status, "total": sum(by_status.values()), **by_status}


def broadcasts_recent() -> list[Broadcast]:
    return list(Broadcast.objects.select_related("created_by").order_by("-pk")[:LIST_LIMIT])


def staff_telegram_id(*, staff: Any) -> int | None:
    return StaffProfile.objects.filter(user=staff).values_list("telegram_id", flat=True).first()
