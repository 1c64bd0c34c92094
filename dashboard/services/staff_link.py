"""Привязка Telegram сотрудника: одноразовый код (15 минут) → /start staff_<код> в боте."""

from __future__ import annotations

import logging
import secrets
from datetime import timedelta
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone
from telegram.error import TelegramError

from botapp.billing.audit import audit_record
from dashboard.models import StaffProfile

logger = logging.getLogger(__name__)

LINK_TTL = timedelta(minutes=15)
PAYLOAD_PREFIX = "staff_"
BOT_USERNAME_CACHE_S = 24 * 3600


def staff_link_code_create(*, staff: Any) -> StaffProfile:
    """Новый одноразовый код (прежний перестаёт действовать)."""
    with transaction.atomic():
        profile, _created = StaffProfile.objects.select_for_update().get_or_create(user=staff)
        profile.link_code = secrets.token_hex(12)
        profile.link_code_expires_at = timezone.now() + LINK_TTL
        profile.save(update_fields=["link_code", "link_code_expires_at"])
        audit_record(actor=staff, action="staff.link_code", target=profile, details={})
    return profile


def staff_link_confirm(*, code: str, telegram_id: int) -> StaffProfile | None:
    """/start staff_<код>: привязать Telegram; None — код неверный, истёк или уже использован."""
    if not code:
        return None
    with transaction.atomic():
        profile = (
            StaffProfile.objects.select_for_update()
            .select_related("user")
            .filter(link_code=code, link_code_expires_at__gt=timezone.now())
            .first()
        )
        if profile is None:
            return None
        # Один Telegram — один сотрудник: прежняя привязка этого Telegram снимается
        StaffProfile.objects.filter(telegram_id=telegram_id).exclude(pk=profile.pk).update(telegram_id=None)
        profile.telegram_id = telegram_id
        profile.linked_at = timezone.now()
        profile.link_code = ""
        profile.link_code_expires_at = None
        profile.save(update_fields=["telegram_id", "linked_at", "link_code", "link_code_expires_at"])
        audit_record(
            actor=profile.user,
            action="staff.link_telegram",
            target=profile,
            details={"telegram_id": telegram_id},
        )
    return profile


def staff_link_url(*, profile: StaffProfile) -> str:
    """t.me-ссылка с кодом; пусто — имя бота узнать не удалось (тогда показываем команду)."""
    username = bot_username()
    if not username or not profile.link_code:
        return ""
    return f"https://t.me/{username}?start={PAYLOAD_PREFIX}{profile.link_code}"


def bot_username() -> str:
    """Имя бота из getMe (кэш на сутки)."""
    from botapp.telegram.outbound import bot_call

    cached = cache.get("dashboard:bot-username")
    if cached:
        return str(cached)
    try:
        me = bot_call(lambda bot: bot.get_me())
    except TelegramError:
        logger.warning("getMe failed: no t.me link for staff linking", exc_info=True)
        return ""
    cache.set("dashboard:bot-username", me.username, BOT_USERNAME_CACHE_S)
    return str(me.username)
