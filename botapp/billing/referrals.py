"""Рефералы: привязка по ссылке ref_<code>, награда обоим после первой оплаты приглашённого."""

from __future__ import annotations

import logging
import secrets
import string
from dataclasses import dataclass

from django.db import IntegrityError, transaction
from django.utils import timezone

from botapp.billing import ledger
from botapp.models import (
    Account,
    LedgerEntry,
    Payment,
    PricingSettings,
    Referral,
    TelegramUser,
    TransactionKind,
)

logger = logging.getLogger(__name__)

# Алфавит диплинков, без регистра: коды храним в нижнем регистре
CODE_ALPHABET = string.ascii_lowercase + string.digits
MAX_CHAIN = 50


def referral_code_for(*, user: TelegramUser) -> str:
    """Код пользователя для ссылки-приглашения; создаётся при первом запросе."""
    if user.referral_code:
        return user.referral_code
    for _attempt in range(5):
        code = "".join(secrets.choice(CODE_ALPHABET) for _ in range(8))
        try:
            with transaction.atomic():
                updated = TelegramUser.objects.filter(pk=user.pk, referral_code__isnull=True).update(
                    referral_code=code
                )
        except IntegrityError:
            continue
        if not updated:
            user.refresh_from_db(fields=["referral_code"])
        else:
            user.referral_code = code
        assert user.referral_code
        return user.referral_code
    raise RuntimeError("could not allocate a referral code")


def _chain_contains(*, start: TelegramUser, target_id: int) -> bool:
    """Есть ли target выше start по цепочке приглашений (защита от петель)."""
    current_id: int | None = start.pk
    for _ in range(MAX_CHAIN):
        if current_id == target_id:
            return True
        current_id = (
            Referral.objects.filter(invitee_id=current_id).values_list("inviter_id", flat=True).first()
        )
        if current_id is None:
            return False
    return True


def referral_attach(*, invitee: TelegramUser, code: str) -> str:
    """Привязать приглашённого; код результата: attached / unknown / self / loop / already / paid."""
    inviter = TelegramUser.objects.filter(referral_code=code.lower()).first()
    if inviter is None:
        return "unknown"
    if inviter.pk == invitee.pk:
        return "self"
    if Payment.objects.filter(user=invitee).exists():
        # Уже платил до ссылки — это не привлечённый клиент
        return "paid"
    if _chain_contains(start=inviter, target_id=invitee.pk):
        return "loop"
    try:
        with transaction.atomic():
            Referral.objects.create(inviter=inviter, invitee=invitee)
    except IntegrityError:
        return "already"
    return "attached"


@dataclass(frozen=True)
class ReferralReward:
    """Награда пригласившему — для сообщения ему после коммита, рядом с чеком покупателю."""

    inviter: TelegramUser
    amount: int
    available: int  # остаток пригласившего сразу после награды


def invitee_key(key: str) -> bool:
    """Проводка — бонус приглашённого или его отмена (`referral:<id>:invitee[:reversal]`).

    Вид проводки у обеих наград один; подпись в истории у приглашённого своя — по ключу.
    """
    parts = key.split(":")
    return parts[0] == "referral" and parts[2:3] == ["invitee"]


def referral_reward_if_due(*, invitee: TelegramUser, payment: Payment) -> ReferralReward | None:
    """После оплаты приглашённого: наградить обоих один раз (условный UPDATE rewarded_at).

    payment запоминается: его возврат отменит награду (referral_reward_reverse).
    Возвращает награду пригласившего для сообщения ему; None — награды нет (или она нулевая).
    """
    settings_row, _ = PricingSettings.objects.get_or_create(pk=1)
    reward = None
    with transaction.atomic():
        referral = (
            Referral.objects.select_for_update().filter(invitee=invitee, rewarded_at__isnull=True).first()
        )
        if referral is None:
            return None
        referral.rewarded_at = timezone.now()
        referral.reward_payment = payment
        referral.save(update_fields=["rewarded_at", "reward_payment"])
        rewards = (
            (referral.inviter, settings_row.referral_inviter_reward, "inviter"),
            (invitee, settings_row.referral_invitee_reward, "invitee"),
        )
        for user, amount, role in rewards:
            if amount:
                posted = ledger.credit(
                    user=user,
                    amount=amount,
                    key=f"referral:{referral.pk}:{role}",
                    kind=TransactionKind.REFERRAL_REWARD,
                    source=ledger.REFERRALS,
                    reference=referral,
                )
                if role == "inviter" and posted.available is not None:
                    reward = ReferralReward(inviter=user, amount=amount, available=posted.available)
    return reward


@dataclass(frozen=True)
class RewardReversal:
    """Отменённая награда: сколько снято и сколько записано долгом у каждого (None — награды не было)."""

    referral: Referral
    inviter: ledger.TakeBack | None
    invitee: ledger.TakeBack | None


def referral_reward_reverse(*, payment: Payment) -> RewardReversal | None:
    """Возврат пополнения, за которое дана награда: забрать её у обоих, ровно один раз.

    Вызывается в транзакции, переводящей платёж в «возвращён». Один раз — строка реферала под
    блокировкой с условием reversed_at IS NULL (повтор события возврата ничего не найдёт) и ключи
    `referral:<id>:<роль>:reversal`. Забирается выданное (из проводки награды, а не из нынешних
    настроек); чего нет в доступном — долгом (ledger.take_back), как и токены самого платежа.
    None — за этот платёж награды не было.
    """
    with transaction.atomic():
        due = Referral.objects.select_for_update().filter(reward_payment=payment, reversed_at__isnull=True)
        referral = due.first()
        if referral is None:
            return None
        referral.reversed_at = timezone.now()
        referral.save(update_fields=["reversed_at"])
        keys = {role: f"referral:{referral.pk}:{role}" for role in ("inviter", "invitee")}
        rewarded = dict(
            LedgerEntry.objects.filter(
                transaction__idempotency_key__in=keys.values(),
                account__kind=Account.Kind.USER,
                bucket=LedgerEntry.Bucket.AVAILABLE,
            ).values_list("transaction__idempotency_key", "amount")
        )
        outcomes: dict[str, ledger.TakeBack | None] = {}
        for role, user in (("inviter", referral.inviter), ("invitee", referral.invitee)):
            amount = rewarded.get(keys[role], 0)
            outcomes[role] = (
                ledger.take_back(
                    user=user,
                    amount=amount,
                    key=f"{keys[role]}:reversal",
                    kind=TransactionKind.REFERRAL_REVERSAL,
                    destination=ledger.REFERRALS,
                    reference=referral,
                    reason=f"payment {payment.pk} refunded",
                )
                if amount > 0
                else None
            )
    result = RewardReversal(referral=referral, inviter=outcomes["inviter"], invitee=outcomes["invitee"])
    logger.warning("referral %s reward reversed, payment %s refunded: %s", referral.pk, payment.pk, result)
    return result


def referral_stats(*, user: TelegramUser) -> tuple[int, int]:
    """(сколько друзей пришло, сколько из них оплатили); возвращённая оплата не считается."""
    joined = Referral.objects.filter(inviter=user).count()
    paid = Referral.objects.filter(inviter=user, rewarded_at__isnull=False, reversed_at__isnull=True).count()
    return joined, paid


def referral_rewards() -> tuple[int, int]:
    """(награда пригласившему, награда приглашённому) из настроек цен."""
    row, _ = PricingSettings.objects.get_or_create(pk=1)
    return row.referral_inviter_reward, row.referral_invitee_reward
