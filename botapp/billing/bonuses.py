"""Приветственный бонус и промокоды."""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import F, Q
from django.utils import timezone
from django.utils.crypto import salted_hmac

from botapp.billing import ledger
from botapp.models import (
    PricingSettings,
    PromoCode,
    PromoRedemption,
    TelegramUser,
    TransactionKind,
    WelcomeClaim,
)

logger = logging.getLogger(__name__)

PROMO_CODE_RE = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
# Перебор промокодов: после стольких несуществующих кодов за окно — отказ без поиска кода.
# Иначе скрипт от имени пользователя узнаёт коды, розданные узкой аудитории, по ответу «нет такого»
PROMO_MISSES_MAX = 5
PROMO_MISSES_WINDOW_S = 3600


def welcome_claim_hash(telegram_id: int) -> str:
    # Соль — SECRET_KEY: по таблице нельзя восстановить id; смена ключа обнулит защиту (см. runbook)
    return salted_hmac("nanobanana.welcome-bonus", str(telegram_id), algorithm="sha256").hexdigest()


def welcome_bonus_grant(*, user: TelegramUser) -> int:
    """Бонус один раз на Telegram-аккаунт, даже после /delete_me. Возвращает начисленное (0 — нет)."""
    amount = PricingSettings.objects.get_or_create(pk=1)[0].welcome_bonus
    if amount <= 0:
        return 0
    id_hash = welcome_claim_hash(user.telegram_id)
    try:
        with transaction.atomic():
            WelcomeClaim.objects.create(id_hash=id_hash)
            ledger.credit(
                user=user,
                amount=amount,
                key=f"welcome:{id_hash}",
                kind=TransactionKind.WELCOME_BONUS,
                source=ledger.PROMOTIONS,
            )
    except IntegrityError:
        return 0
    return amount


@dataclass(frozen=True)
class PromoResult:
    status: str  # ok / invalid / not_found / inactive / expired / exhausted / already_used / too_many
    amount: int = 0
    available: int = 0


class _PromoRefused(Exception):
    def __init__(self, status: str) -> None:
        self.status = status


def _refusal(promo: PromoCode) -> str:
    now = timezone.now()
    if not promo.is_active:
        return "inactive"
    if (promo.valid_from and promo.valid_from > now) or (promo.valid_until and promo.valid_until < now):
        return "expired"
    return "exhausted"


def _promo_misses_key(user: TelegramUser) -> str:
    return f"promo-misses:{user.pk}"


def _promo_attempt_take(user: TelegramUser) -> bool:
    """Занять попытку до поиска кода; False — попытки окна кончились.

    Счёт растёт до поиска, атомарно (INCR): параллельные апдейты одного пользователя не проскочат
    проверку все разом. Кэш (Redis) лежит — без ограничения: промокод важнее защиты от перебора.
    """
    key = _promo_misses_key(user)
    try:
        # Окно — от первого промаха: add не продлевает его на следующих попытках
        cache.add(key, 0, timeout=PROMO_MISSES_WINDOW_S)
        try:
            taken = cache.incr(key)
        except ValueError:
            # Ключ истёк между add и incr — первая попытка нового окна
            cache.set(key, 1, timeout=PROMO_MISSES_WINDOW_S)
            taken = 1
        if taken == 1:
            # INCR по ключу, истёкшему между проверкой и INCR, создал бы его без срока — навсегда
            cache.touch(key, PROMO_MISSES_WINDOW_S)
    except Exception:
        logger.warning("promo attempt limit unavailable", exc_info=True)
        return True
    return taken <= PROMO_MISSES_MAX


def _promo_attempt_return(user: TelegramUser) -> None:
    try:
        cache.decr(_promo_misses_key(user))
    except Exception:
        # Ключа нет (окно кончилось) или кэш лежит — возвращать нечего
        logger.debug("promo attempt not returned", exc_info=True)


def promo_redeem(*, user: TelegramUser, code: str) -> PromoResult:
    """Погасить промокод атомарно: один раз на пользователя, не больше лимита даже при гонке."""
    if not PROMO_CODE_RE.match(code):
        return PromoResult("invalid")
    if not _promo_attempt_take(user):
        return PromoResult("too_many")
    promo = PromoCode.objects.filter(code=code.lower()).first()
    if promo is None:
        return PromoResult("not_found")
    # Код существует — это не промах: попытку возвращаем
    _promo_attempt_return(user)
    now = timezone.now()
    try:
        with transaction.atomic():
            try:
                with transaction.atomic():
                    redemption = PromoRedemption.objects.create(promo=promo, user=user)
            except IntegrityError as exc:
                raise _PromoRefused("already_used") from exc
            # Условный UPDATE: лимит и окно проверяются под блокировкой строки, без гонки
            taken = (
                PromoCode.objects.filter(pk=promo.pk, is_active=True, redeemed_count__lt=F("max_redemptions"))
                .filter(Q(valid_from__isnull=True) | Q(valid_from__lte=now))
                .filter(Q(valid_until__isnull=True) | Q(valid_until__gte=now))
                .update(redeemed_count=F("redeemed_count") + 1)
            )
            if not taken:
                promo.refresh_from_db()
                raise _PromoRefused(_refusal(promo))
            posted = ledger.credit(
                user=user,
                amount=promo.amount,
                key=f"promo:{promo.pk}:{user.pk}",
                kind=TransactionKind.PROMO,
                source=ledger.PROMOTIONS,
                reference=redemption,
            )
    except _PromoRefused as refused:
        return PromoResult(refused.status)
    return PromoResult("ok", amount=promo.amount, available=posted.available or 0)
