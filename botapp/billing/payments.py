"""Пополнения: счета, проверка pre_checkout, зачисление ровно один раз, возвраты через журнал.

Зачисление ключуется внешним id платежа (telegram_payment_charge_id у звёзд, contract id у
lava.top): UNIQUE(method, external_id) на платеже и ключ проводки `pay:<method>:<id>` — два
копии апдейта, пришедшие одновременно, дают одно зачисление.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from botapp.billing import ledger
from botapp.billing.errors import InsufficientFunds, RefundRefused
from botapp.billing.referrals import (
    ReferralReward,
    RewardReversal,
    referral_reward_if_due,
    referral_reward_reverse,
)
from botapp.models import (
    Account,
    Invoice,
    Payment,
    PaymentMethod,
    TelegramUser,
    TokenPackage,
    TransactionKind,
)

logger = logging.getLogger(__name__)

STARS_CURRENCY = "XTR"
PAYLOAD_PREFIX = "nb:"

SALES_ACCOUNT = {PaymentMethod.STARS: ledger.SALES_STARS, PaymentMethod.LAVA: ledger.SALES_LAVA}


@dataclass(frozen=True)
class PaymentResult:
    payment: Payment
    created: bool
    available: int
    # Эта оплата принесла награду пригласившему: вызывающий сообщает ему рядом с чеком
    referral: ReferralReward | None = None


def invoice_payload(invoice: Invoice) -> str:
    return f"{PAYLOAD_PREFIX}{invoice.nonce}"


def invoice_create(
    *, user: TelegramUser, package: TokenPackage, method: str, currency: str, amount: Decimal
) -> Invoice:
    """Запомнить, что и за сколько предложено: pre_checkout и зачисление сверяются с этой строкой."""
    return Invoice.objects.create(
        method=method,
        user=user,
        package=package,
        nonce=secrets.token_urlsafe(12),
        amount=amount,
        currency=currency,
        tokens=package.total_tokens,
    )


def invoice_create_stars(*, user: TelegramUser, package: TokenPackage) -> Invoice:
    return invoice_create(
        user=user,
        package=package,
        method=PaymentMethod.STARS,
        currency=STARS_CURRENCY,
        amount=Decimal(package.stars),
    )


def _invoice_by_payload(payload: str) -> Invoice | None:
    if not payload.startswith(PAYLOAD_PREFIX):
        return None
    return (
        Invoice.objects.select_related("user", "package")
        .filter(nonce=payload.removeprefix(PAYLOAD_PREFIX), method=PaymentMethod.STARS)
        .first()
    )


def precheckout_refusal(*, payload: str, currency: str, total_amount: int, telegram_id: int) -> str | None:
    """Причина отказа в pre_checkout_query или None, если платёж можно принимать.

    Причина — код для перевода в текст пользователю (см. handlers/topup.py).
    """
    invoice = _invoice_by_payload(payload)
    if invoice is None:
        return "unknown_invoice"
    if invoice.user.telegram_id != telegram_id:
        return "wrong_user"
    if invoice.user.is_banned:
        return "banned"
    if invoice.status != Invoice.Status.OPEN:
        return "already_paid"
    if not invoice.package.is_enabled:
        return "package_unavailable"
    if invoice.amount != invoice.package.stars or invoice.tokens != invoice.package.total_tokens:
        # Пакет поменяли после выставления счёта (кончилась скидка, подняли цену): счёт в чате остаётся
        # навсегда и продал бы по прежней цене — пусть возьмёт новый в /topup
        return "wrong_amount"
    if currency != STARS_CURRENCY or currency != invoice.currency:
        return "wrong_currency"
    if Decimal(total_amount) != invoice.amount:
        return "wrong_amount"
    return None


def _record_payment(
    *,
    method: str,
    external_id: str,
    invoice: Invoice | None,
    user: TelegramUser,
    amount: Decimal,
    currency: str,
    tokens: int,
    note: str = "",
    raw: dict[str, Any],
) -> tuple[Payment, bool]:
    """Вставить платёж; (существующий, False) — эту оплату уже записали."""
    try:
        with transaction.atomic():
            payment = Payment.objects.create(
                method=method,
                external_id=external_id,
                invoice=invoice,
                user=user,
                package=invoice.package if invoice else None,
                amount=amount,
                currency=currency,
                tokens=tokens,
                note=note,
                raw=raw,
            )
    except IntegrityError:
        return Payment.objects.get(method=method, external_id=external_id), False
    return payment, True


def payment_complete(
    *,
    method: str,
    external_id: str,
    invoice: Invoice | None,
    user: TelegramUser,
    amount: Decimal,
    currency: str,
    raw: dict[str, Any],
) -> PaymentResult:
    """Зачислить оплаченный счёт ровно один раз; повтор возвращает прежний платёж.

    Сумма или валюта не совпали со счётом, счёт не найден — платёж записывается без зачисления
    (tokens=0) с пометкой: деньги пришли, но кому и сколько — решает персонал.
    """
    matched = invoice is not None and invoice.amount == amount and invoice.currency == currency
    note = "" if matched else "unmatched: invoice missing or amount/currency differ"
    referral = None
    with transaction.atomic():
        payment, created = _record_payment(
            method=method,
            external_id=external_id,
            invoice=invoice,
            user=user,
            amount=amount,
            currency=currency,
            tokens=invoice.tokens if matched and invoice else 0,
            note=note,
            raw=raw,
        )
        if created and payment.tokens:
            ledger.credit(
                user=user,
                amount=payment.tokens,
                key=f"pay:{method}:{external_id}",
                kind=TransactionKind.PURCHASE,
                source=SALES_ACCOUNT[PaymentMethod(method)],
                reference=payment,
            )
            if payment.invoice_id is not None:
                Invoice.objects.filter(pk=payment.invoice_id).update(status=Invoice.Status.PAID)
            referral = referral_reward_if_due(invitee=user, payment=payment)
    if created and not payment.tokens:
        logger.error("payment %s %s not credited: %s", method, external_id, note)
    available = ledger.account_for(user).available
    return PaymentResult(payment=payment, created=created, available=available, referral=referral)


def payment_stars_complete(
    *, charge_id: str, payload: str, currency: str, total_amount: int, telegram_id: int, raw: dict[str, Any]
) -> PaymentResult:
    """successful_payment (или потерянная оплата из getStarTransactions): зачислить один раз."""
    invoice = _invoice_by_payload(payload)
    user = invoice.user if invoice else TelegramUser.objects.get(telegram_id=telegram_id)
    return payment_complete(
        method=PaymentMethod.STARS,
        external_id=charge_id,
        invoice=invoice if invoice and invoice.user.telegram_id == telegram_id else None,
        user=user,
        amount=Decimal(total_amount),
        currency=currency,
        raw=raw,
    )


def _shortage_reason(needed: int, account: Account) -> str:
    """Почему токены платежа не забрать: зарезервированные под идущие задания вернутся — стоит повторить."""
    if account.on_hold and account.available + account.on_hold >= needed:
        return (
            f"{account.on_hold} of the user's tokens are reserved for running jobs: {needed} needed, "
            f"{account.available} available; retry the refund after the jobs finish"
        )
    reserved = f", {account.on_hold} reserved for running jobs" if account.on_hold else ""
    return f"the user has already spent the tokens: {needed} needed, {account.available} available{reserved}"


def refund_begin(*, payment: Payment, actor: Any | None) -> int:
    """Шаг 1 возврата: забрать токены (статус refund_pending). Возвращает номер попытки.

    Raises: RefundRefused — платёж не в статусе «оплачен», токены уже потрачены или в резерве под задания.
    """
    from botapp.billing.audit import audit_record

    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Payment.Status.PAID:
            raise RefundRefused(f"payment is {locked.get_status_display()}")
        locked.refund_attempts += 1
        locked.status = Payment.Status.REFUND_PENDING
        locked.save(update_fields=["refund_attempts", "status"])
        if locked.tokens:
            try:
                ledger.debit(
                    user=locked.user,
                    amount=locked.tokens,
                    key=f"refund:{locked.pk}:{locked.refund_attempts}",
                    kind=TransactionKind.PAYMENT_REFUND,
                    destination=SALES_ACCOUNT[PaymentMethod(locked.method)],
                    reference=locked,
                    actor_id=actor.pk if actor else None,
                    reason="payment refund",
                )
            except InsufficientFunds as exc:
                # Политика: баланс в минус не уводим; причина отказа — потрачены токены или только в резерве
                raise RefundRefused(_shortage_reason(locked.tokens, ledger.account_for(locked.user))) from exc
        if actor is not None:
            audit_record(
                actor=actor,
                action="payment.refund",
                target=locked,
                details={"attempt": locked.refund_attempts},
            )
    return locked.refund_attempts


def refund_finish(*, payment: Payment) -> None:
    """Шаг 3а: провайдер вернул деньги — платёж возвращён, реферальная награда за него отменена.

    Награда отменяется здесь, а не на шаге 1: отказ провайдера (refund_compensate) ничего не должен
    возвращать обратно. Условный переход — и отмена в той же транзакции — ровно один раз.
    """
    with transaction.atomic():
        finished = Payment.objects.filter(pk=payment.pk, status=Payment.Status.REFUND_PENDING).update(
            status=Payment.Status.REFUNDED, refunded_at=timezone.now()
        )
        if finished:
            referral_reward_reverse(payment=payment)


def refund_compensate(*, payment: Payment, attempt: int, reason: str) -> None:
    """Шаг 3б: провайдер отказал — вернуть токены пользователю, платёж снова «оплачен»."""
    with transaction.atomic():
        locked = Payment.objects.select_for_update().get(pk=payment.pk)
        if locked.status != Payment.Status.REFUND_PENDING:
            return
        if locked.tokens:
            ledger.credit(
                user=locked.user,
                amount=locked.tokens,
                key=f"refund:{locked.pk}:{attempt}:undo",
                kind=TransactionKind.REFUND_REVERSAL,
                source=SALES_ACCOUNT[PaymentMethod(locked.method)],
                reference=locked,
                reason=reason[:500],
            )
        locked.status = Payment.Status.PAID
        locked.note = f"refund refused: {reason}"[:300]
        locked.save(update_fields=["status", "note"])


@dataclass(frozen=True)
class ExternalRefund:
    """Итог отметки внешнего возврата: changed=False — платёж уже был возвращён, ничего не сделано.

    taken — сколько токенов платежа снято с доступного (при возврате из админки — ещё на его шаге 1);
    owed — не хватило, записано долгом (RefundDebt); reserved — часть долга, что была в резерве под
    идущие задания: она спишется, когда их холды вернутся.
    """

    payment: Payment
    changed: bool
    taken: int
    owed: int = 0
    reserved: int = 0
    # Награда за приглашение, выданная за этот платёж, отменена (None — её не было)
    reversal: RewardReversal | None = None

    @property
    def spent(self) -> int:
        return self.owed - self.reserved

    @property
    def bonus_cancelled(self) -> int:
        """Сколько бонуса за приглашение отменено у самого плательщика (снято и записано долгом)."""
        invitee = self.reversal.invitee if self.reversal else None
        return invitee.taken + invitee.owed if invitee else 0

    @property
    def payer_owed(self) -> int:
        """Весь долг плательщика от этого возврата: токены платежа и отменённый бонус."""
        invitee = self.reversal.invitee if self.reversal else None
        return self.owed + (invitee.owed if invitee else 0)


def payment_refunded_externally(
    *, method: str, external_id: str, actor: Any | None = None
) -> ExternalRefund | None:
    """Возврат, сделанный у провайдера (refunded_payment Telegram, кабинет lava): забрать, сколько есть.

    Деньги уже ушли, отказаться нельзя; баланс в минус не уводим — недостача записывается в платёж
    (refund_shortfall) и долгом пользователя (ledger.take_back): токены, зарезервированные под идущие
    задания, спишутся, когда их холды вернутся. Повтор (платёж уже возвращён) ничего не меняет:
    changed=False. actor — сотрудник, отметивший возврат в админке: он попадает в проводку и, в той же
    транзакции, в журнал аудита. None — платежа нет.
    """
    from botapp.billing.audit import audit_record

    outcome = ledger.TakeBack(taken=0, owed=0, reserved=0)
    with transaction.atomic():
        payment = Payment.objects.select_for_update().filter(method=method, external_id=external_id).first()
        if payment is None:
            return None
        if payment.status == Payment.Status.REFUNDED:
            return ExternalRefund(payment=payment, changed=False, taken=0)
        if payment.status == Payment.Status.PAID and payment.tokens:
            outcome = ledger.take_back(
                user=payment.user,
                amount=payment.tokens,
                key=f"refund:{payment.pk}:external",
                kind=TransactionKind.PAYMENT_REFUND,
                destination=SALES_ACCOUNT[PaymentMethod(method)],
                reference=payment,
                actor_id=actor.pk if actor else None,
                reason="refunded by the payment provider",
            )
            payment.refund_shortfall = outcome.owed
        elif payment.status == Payment.Status.REFUND_PENDING:
            # Возврат начат из админки: токены уже сняты его шагом 1, Telegram лишь сообщил о финале
            outcome = ledger.TakeBack(taken=payment.tokens, owed=0, reserved=0)
        payment.status = Payment.Status.REFUNDED
        payment.refunded_at = timezone.now()
        payment.save(update_fields=["status", "refunded_at", "refund_shortfall"])
        reversal = referral_reward_reverse(payment=payment)
        if actor is not None:
            details = {"taken": outcome.taken, "shortfall": outcome.owed, "reserved": outcome.reserved}
            if reversal is not None:
                details["referral_reversed"] = reversal.referral.pk
            audit_record(actor=actor, action="payment.refund_external", target=payment, details=details)
    if outcome.owed:
        logger.error(
            "payment %s refunded by provider: %s tokens taken back, %s reserved by running jobs "
            "(owed, taken when their holds are released), %s already spent (owed)",
            payment.pk,
            outcome.taken,
            outcome.reserved,
            outcome.spent,
        )
    return ExternalRefund(
        payment=payment,
        changed=True,
        taken=outcome.taken,
        owed=outcome.owed,
        reserved=outcome.reserved,
        reversal=reversal,
    )
