"""Оплата картой через lava.top: где предлагается, e-mail для чека, счёт, приём вебхука.

Вебхуку не верим ни в чём, кроме id контракта: статус и чек (сумму и валюту) перечитываем у lava,
число токенов берём из нашего счёта (Invoice); чек не сошёлся со счётом — платёж записывается без
зачисления, решает персонал. Зачисление — payments.payment_complete с ключом (lava, contract id),
поэтому повторы и параллельные копии вебхука и опрос открытых счетов дают одно зачисление.
Правило Telegram о цифровых товарах и то, почему lava выключена по умолчанию, —
Документация/payments-lava.md.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from django.db.models import F
from django.utils import timezone

from botapp.billing import payments
from botapp.billing.referrals import ReferralReward
from botapp.models import Invoice, Payment, PaymentMethod, TelegramUser, TokenPackage
from botapp.providers.base import ProviderError, ProviderPermanentError, ProviderTransientError
from botapp.providers.payments import lava as lava_api

logger = logging.getLogger(__name__)

EMAIL_MAX_LENGTH = 254
CURRENCIES = lava_api.CURRENCIES
# Событие, после которого стоит перечитать контракт; остальные (отказы, подписки) не про нас, но
# списанное продление подписки — ошибка настройки оффера, о которой персонал должен узнать
SUCCESS_EVENT = "payment.success"
RECURRING_SUCCESS_EVENT = "subscription.recurring.payment.success"
# Покупатель в теле вебхука и в контракте (e-mail, маска карты) — личные данные; сверке и отчётам
# хватает остального (id контракта, сумма, валюта, статус), поэтому /delete_me его вырезает
BUYER_KEY = "buyer"
# Оплата ещё идёт: вебхук «успех» пришёл раньше, чем lava показывает итог, — пусть lava повторит
PENDING_STATUSES = frozenset({"NEW", "IN_PROGRESS"})
# Опрос открытых счетов: вебхук мог не дойти (19 попыток lava за ~5 ч пришлись на наш простой)
POLL_MAX_AGE_S = 48 * 3600
POLL_MIN_AGE_S = 60
POLL_LIMIT = 200
# Проход короче мягкого лимита задачи (300 с): 200 медленных ответов lava его бы съели, и проход
# обрывался бы на одном и том же месте
POLL_BUDGET_S = 120.0
POLL_REFUSED_STOP = 3
# Сколько ждать чека у оплаченного контракта: дольше окна повторов вебхука lava (~5 ч)
RECEIPT_WAIT_S = 6 * 3600


class LavaNotOffered(Exception):
    """Оплата картой для этого пользователя, пакета или валюты не предлагается."""


@dataclass(frozen=True)
class WebhookOutcome:
    """Итог вебхука: что сделали (для лога); при зачислении этим вызовом — кому и сколько (для чека)."""

    action: str
    user: TelegramUser | None = None
    tokens: int = 0
    available: int = 0
    referral: ReferralReward | None = None  # награда пригласившему — сообщить ему рядом с чеком

    @property
    def settled(self) -> bool:
        """Платёж записан этим вызовом: зачислен или (чек не сошёлся) ждёт персонал — сказать покупателю."""
        return self.action in ("credited", "unmatched")


def lava_price(package: TokenPackage, currency: str) -> Decimal | None:
    """Цена пакета в валюте lava или None, если оффера или корректной цены нет."""
    if currency not in lava_api.CURRENCIES or not package.lava_offers.get(currency):
        return None
    try:
        price = Decimal(str(package.lava_prices.get(currency, "")))
    except InvalidOperation:
        return None
    return price if price.is_finite() and price > 0 else None


def lava_offered(
    user: TelegramUser, package: TokenPackage | None = None, currency: str | None = None
) -> bool:
    """Предлагать ли оплату картой: только если оператор включил LAVA_ENABLED и у пакета есть оффер.

    Без пакета — «включено ли вообще для пользователя». Других условий (страна, язык) нет намеренно:
    решение включить lava — целиком на операторе, см. payments-lava.md.
    """
    if not settings.LAVA_ENABLED or user.is_banned:
        return False
    if package is None:
        return True
    if not package.is_enabled:
        return False
    currencies = [currency] if currency is not None else list(package.lava_offers)
    return any(lava_price(package, code) is not None for code in currencies)


def lava_offer_get(*, user: TelegramUser, package_id: int, currency: str) -> TokenPackage | None:
    """Пакет, если его можно купить картой в этой валюте; иначе None."""
    package = TokenPackage.objects.filter(pk=package_id).first()
    if package is None or not lava_offered(user, package, currency):
        return None
    return package


def lava_email_set(*, user: TelegramUser, email: str) -> str:
    """Проверить и запомнить e-mail для чеков lava. Raises ValidationError — адрес негодный."""
    email = email.strip()
    if len(email) > EMAIL_MAX_LENGTH:
        raise ValidationError("e-mail is too long", code="invalid")
    validate_email(email)
    TelegramUser.objects.filter(pk=user.pk).update(lava_email=email)
    user.lava_email = email
    return email


def lava_invoice_create(*, user: TelegramUser, package_id: int, currency: str) -> Invoice:
    """Создать контракт у lava и наш счёт с его id и ссылкой на оплату.

    Сначала lava, потом строка: ссылку пользователь увидит только после записи счёта, значит
    оплатить контракт, которого у нас нет, он не сможет. Повисший у lava контракт без оплаты
    безвреден.

    Raises: LavaNotOffered; ProviderTransientError / ProviderPermanentError от адаптера.
    """
    package = lava_offer_get(user=user, package_id=package_id, currency=currency)
    price = lava_price(package, currency) if package else None
    if package is None or price is None:
        raise LavaNotOffered(f"package {package_id} in {currency}")
    if not user.lava_email:
        raise LavaNotOffered("no e-mail for the receipt")
    created = lava_api.lava_invoice_create(
        email=user.lava_email,
        offer_id=str(package.lava_offers[currency]),
        currency=currency,
        language=user.effective_language,
    )
    invoice = payments.invoice_create(
        user=user, package=package, method=PaymentMethod.LAVA, currency=currency, amount=price
    )
    invoice.external_id = created.contract_id
    invoice.payment_url = created.payment_url
    invoice.save(update_fields=["external_id", "payment_url"])
    return invoice


def _contract_id(payload: dict[str, Any]) -> str | None:
    value = payload.get("contractId")
    if not isinstance(value, str):
        return None
    try:
        return str(uuid.UUID(value)) if len(value) == 36 else None
    except ValueError:
        return None


def lava_webhook_handle(*, payload: dict[str, Any]) -> WebhookOutcome:
    """Вебхук lava (уже аутентифицированный): зачислить, если lava подтверждает оплату нашего счёта.

    Неизвестный контракт, не то событие, отказ в оплате — ничего не меняется.
    Raises: ProviderTransientError / ProviderPermanentError — lava не ответила или ещё не видит
    итога оплаты; вызывающий отвечает 5xx, и lava пришлёт вебхук снова.
    """
    contract_id = _contract_id(payload)
    if contract_id is None:
        return WebhookOutcome("ignored: no contract id")
    if payload.get("eventType") == RECURRING_SUCCESS_EVENT:
        # Бот продаёт только разовые пакеты: продление подписки значит, что оффер в кабинете lava
        # настроен как подписка. Деньги списаны, токенов нет — персоналу нужно вернуть их у lava
        logger.error("lava charged a subscription renewal, contract %s: refund it at lava", contract_id)
        return WebhookOutcome("ignored: subscription renewal")
    if payload.get("eventType") != SUCCESS_EVENT:
        return WebhookOutcome(f"ignored: event {str(payload.get('eventType'))[:40]}")
    invoice = (
        Invoice.objects.select_related("user", "package")
        .filter(method=PaymentMethod.LAVA, external_id=contract_id)
        .first()
    )
    if invoice is None:
        # Деньги могли прийти за чужой продукт того же ключа — зачислять некому, решает персонал
        logger.warning("lava webhook for an unknown contract %s", contract_id)
        return WebhookOutcome("ignored: unknown contract")
    return lava_invoice_settle(invoice=invoice, webhook=payload)


def lava_invoice_settle(*, invoice: Invoice, webhook: dict[str, Any] | None = None) -> WebhookOutcome:
    """Перечитать контракт счёта у lava и зачислить оплаченный (ровно один раз).

    webhook — тело вебхука «успех» (None — опрос): раз lava сама сказала «оплачено», а её API ещё
    не видит итога (NEW, IN_PROGRESS, 404), это временно — ProviderTransientError, lava повторит.
    """
    contract_id = invoice.external_id
    if Payment.objects.filter(method=PaymentMethod.LAVA, external_id=contract_id).exists():
        # Повтор уже зачисленного: lava не спрашиваем (и не зависим от её доступности)
        return WebhookOutcome("duplicate")
    contract = lava_api.lava_contract_get(contract_id=contract_id)
    status = contract.status if contract is not None else "unknown to lava"
    waiting = contract is None or contract.status in PENDING_STATUSES
    receipt_overdue = timezone.now() - invoice.created_at > timedelta(seconds=RECEIPT_WAIT_S)
    if contract is not None and contract.completed and not contract.has_receipt and not receipt_overdue:
        # Оплачен, а чека (суммы и валюты) ещё нет — ждём его, а не пишем платёж на 0: записанный
        # платёж сделал бы все следующие вебхуки и опросы повтором. Не дождались за RECEIPT_WAIT_S —
        # платёж без зачисления (unmatched, ERROR в лог): персонал увидит его, а не потеряет оплату
        waiting, status = True, "COMPLETED without a receipt"
    if waiting or contract is None:
        if webhook is not None:
            raise ProviderTransientError(f"lava contract {contract_id} is {status} after payment.success")
        return WebhookOutcome(f"pending: contract is {status[:20]}")
    if not contract.completed:
        if contract.status == "FAILED":
            # Опрос больше его не перечитывает; вебхук «успех» по нему всё равно перепроверится
            open_invoice = Invoice.objects.filter(pk=invoice.pk, status=Invoice.Status.OPEN)
            open_invoice.update(status=Invoice.Status.FAILED)
        return WebhookOutcome(f"ignored: contract is {contract.status[:20]}")
    raw: dict[str, Any] = {"contract": contract.raw}
    if webhook is not None:
        raw["webhook"] = webhook
    erased_at = invoice.user.data_erased_at
    if erased_at is not None and invoice.created_at <= erased_at:
        # Счёт выставлен до /delete_me, оплата дошла после: e-mail уже стёрт, не записываем его снова
        raw = _without_buyer(raw)
    # Сумма и валюта — из чека lava: оператор мог снизить цену оффера в кабинете, не поправив пакет.
    # Не сошлись со счётом — платёж без зачисления (payment_complete), решает персонал
    result = payments.payment_complete(
        method=PaymentMethod.LAVA,
        external_id=contract_id,
        invoice=invoice,
        user=invoice.user,
        amount=contract.amount if contract.amount is not None else Decimal(0),
        currency=contract.currency,
        raw=raw,
    )
    if not result.created:
        return WebhookOutcome("duplicate")
    if not result.payment.tokens:
        return WebhookOutcome("unmatched", invoice.user, 0, result.available)
    return WebhookOutcome("credited", invoice.user, result.payment.tokens, result.available, result.referral)


def lava_poll_open() -> list[WebhookOutcome]:
    """Открытые счета lava за POLL_MAX_AGE_S: перечитать у lava и зачислить оплаченные.

    Страховка на потерянный вебхук. Первыми — давнее всех перечитанные (polled_at): брошенные счета
    не заслоняют оплаченный, за несколько проходов опрос обходит все открытые. lava отказала по одному
    счёту (4xx) — следующий; lava не отвечает (5xx, 429, таймаут) — остальные ждут следующего прохода.
    """
    started = time.monotonic()
    now = timezone.now()
    invoices = (
        Invoice.objects.select_related("user", "package")
        .filter(
            method=PaymentMethod.LAVA,
            status=Invoice.Status.OPEN,
            created_at__gte=now - timedelta(seconds=POLL_MAX_AGE_S),
            created_at__lte=now - timedelta(seconds=POLL_MIN_AGE_S),
        )
        .exclude(external_id="")
        .order_by(F("polled_at").asc(nulls_first=True), "created_at")[:POLL_LIMIT]
    )
    outcomes: list[WebhookOutcome] = []
    refused_in_a_row = 0
    for number, invoice in enumerate(invoices):
        if number and time.monotonic() - started > POLL_BUDGET_S:
            break
        Invoice.objects.filter(pk=invoice.pk).update(polled_at=timezone.now())
        try:
            outcome = lava_invoice_settle(invoice=invoice)
        except ProviderPermanentError as exc:
            refused_in_a_row += 1
            if refused_in_a_row >= POLL_REFUSED_STOP:
                # Отказ подряд по нескольким счетам — скорее ключ отозван или не тот, чем сами счета:
                # не делать 200 заведомо неудачных запросов за проход
                logger.error("lava poll stopped after %s refusals in a row: %s", refused_in_a_row, exc)
                break
            logger.warning("lava poll skipped invoice %s: %s", invoice.pk, exc)
            continue
        except ProviderError as exc:
            logger.warning("lava poll stopped at invoice %s: %s", invoice.pk, exc)
            break
        refused_in_a_row = 0
        if outcome.settled:
            logger.warning("lava poll settled invoice %s: %s", invoice.pk, outcome.action)
        outcomes.append(outcome)
    return outcomes


def _without_buyer(raw: dict[str, Any]) -> dict[str, Any]:
    return {
        part: {k: v for k, v in value.items() if k != BUYER_KEY} if isinstance(value, dict) else value
        for part, value in raw.items()
        if part != BUYER_KEY
    }


def lava_payments_anonymise(*, user: TelegramUser) -> int:
    """/delete_me: вырезать покупателя из сохранённых ответов lava в платежах пользователя; вернуть число."""
    changed = 0
    for pk, raw in Payment.objects.filter(user=user, method=PaymentMethod.LAVA).values_list("pk", "raw"):
        if not isinstance(raw, dict):
            continue
        cleaned = _without_buyer(raw)
        if cleaned != raw:
            Payment.objects.filter(pk=pk).update(raw=cleaned)
            changed += 1
    return changed
