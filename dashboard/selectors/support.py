"""Чтение поддержки для панели: список веток и диалог."""

from __future__ import annotations

from django.db.models import QuerySet

from botapp.models import ChatLogEntry
from dashboard.models import StaffProfile, SupportThread

THREADS_SHOWN = 200
DIALOG_SHOWN = 200


def support_threads(*, status: str) -> list[SupportThread]:
    """Ветки по последней активности; status — open, resolved или пусто (все)."""
    threads: QuerySet[SupportThread] = SupportThread.objects.select_related("user").order_by(
        "-last_activity_at"
    )
    if status:
        threads = threads.filter(status=status)
    return list(threads[:THREADS_SHOWN])


def support_dialog(*, thread: SupportThread, everything: bool) -> list[ChatLogEntry]:
    """Сообщения ветки по порядку: обращения и ответы поддержки (everything — вся переписка с ботом)."""
    entries = ChatLogEntry.objects.filter(user_id=thread.user_id).select_related("staff_author")
    if not everything:
        entries = entries.filter(is_support=True)
    latest = entries.order_by("-created_at", "-id")[:DIALOG_SHOWN]
    return list(reversed(latest))


def support_unread_total() -> int:
    return sum(SupportThread.objects.filter(unread_count__gt=0).values_list("unread_count", flat=True))


def staff_profile_of(*, user_id: int) -> StaffProfile | None:
    return StaffProfile.objects.filter(user_id=user_id).first()
