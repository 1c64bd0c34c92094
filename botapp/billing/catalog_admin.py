"""Сервисы админки персонала: правки каталога, цен и промокодов, проверка цен, бан, возврат.

Каждое действие персонала с деньгами пишет запись аудита в той же транзакции, что и само
изменение: нет изменения без записи и записи без изменения.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models, transaction
from django.utils import timezone

from botapp.billing import payments, stars
from botapp.billing.audit import audit_record
from botapp.billing.errors import RefundRefused
from botapp.models import GenerationModel, Payment, PaymentMethod, TelegramUser

logger = logging.getLogger(__name__)

# Изменение любого из них делает цену снова «не проверенной»
PRICE_FIELDS = ("price_unit", "unit_prices", "input_image_price")
# Служебные поля, которые меняются сами и в аудит не попадают; админка их и не записывает
# (курсор сверки звёзд, прочитанный админкой до блокировки строки, откатил бы параллельный проход сверки)
_UNAUDITED = {
    "updated_at",
    "created_at",
    "redeemed_count",
    "price_verified_at",
    "price_verified_by_id",
    "stars_reconciled_offset",
}


def _plain(value: Any) -> Any:
    """Decimal, даты и т. п. → то, что сохранится в JSONField без потерь смысла."""
    return json.loads(json.dumps(value, cls=DjangoJSONEncoder))


def _field_values(obj: models.Model) -> dict[str, Any]:
    return {
        field.attname: _plain(getattr(obj, field.attname))
        for field in obj._meta.concrete_fields
        if not field.primary_key and field.attname not in _UNAUDITED
    }


def staff_save(*, obj: models.Model, actor: Any) -> dict[str, list[Any]]:
    """Сохранить объект из админки и записать в аудит, какие поля изменились (было → стало).

    Существующая строка обновляется только по изменённым полям: счётчик погашений промокода,
    выросший за время правки, не затирается. Смена цены модели снимает отметку «проверено».
    Возвращает изменения.
    """
    label = obj._meta.label_lower
    with transaction.atomic():
        current = None
        if obj.pk is not None:
            current = type(obj)._default_manager.select_for_update().filter(pk=obj.pk).first()
        before = _field_values(current) if current is not None else {}
        changes = {
            name: [before.get(name), value]
            for name, value in _field_values(obj).items()
            if before.get(name) != value
        }
        if current is None:
            obj.save()
        elif changes:
            update_fields = [*changes, *(f.attname for f in obj._meta.concrete_fields if _is_auto_now(f))]
            if isinstance(obj, GenerationModel) and any(name in changes for name in PRICE_FIELDS):
                obj.price_verified_at = None
                obj.price_verified_by = None
                update_fields += ["price_verified_at", "price_verified_by"]
            obj.save(update_fields=update_fields)
        if current is None or changes:
            audit_record(
                actor=actor,
                action=f"{label}.{'create' if current is None else 'change'}",
                target=obj,
                details={"changes": changes},
            )
    return changes


def _is_auto_now(field: Any) -> bool:
    return bool(getattr(field, "auto_now", False))


def price_verify(*, model: GenerationModel, actor: Any) -> None:
    """Сотрудник сверил себестоимость с прайсом провайдера: отметка кто и когда + аудит."""
    with transaction.atomic():
        now = timezone.now()
        GenerationModel.objects.filter(pk=model.pk).update(price_verified_at=now, price_verified_by=actor)
        model.price_verified_at, model.price_verified_by = now, actor
        audit_record(
            actor=actor,
            action="catalog.price_verify",
            target=model,
            details={
                "price_unit": model.price_unit,
                "unit_prices": _plain(model.unit_prices),
                "input_image_price": _plain(model.input_image_price),
                "price_source": model.price_source,
            },
        )


def user_ban_set(*, user: TelegramUser, banned: bool, actor: Any) -> bool:
    """Забанить/разбанить пользователя; True — состояние изменилось (тогда и запись аудита)."""
    with transaction.atomic():
        updated = TelegramUser.objects.filter(pk=user.pk, is_banned=not banned).update(is_banned=banned)
        if updated:
            audit_record(actor=actor, action="user.ban" if banned else "user.unban", target=user, details={})
    user.is_banned = banned
    return bool(updated)


def payment_refund(*, payment: Payment, actor: Any) -> None:
    """Возврат из админки: оплаченный — полный возврат, зависший refund_pending — повтор.

    Raises: RefundRefused — с причиной для сотрудника (не звёзды, уже возвращён, токены потрачены…).
    """
    if payment.status != Payment.Status.REFUND_PENDING:
        # stars_refund сам пишет аудит «payment.refund» вместе со списанием токенов
        stars.stars_refund(payment=payment, actor=actor)
        return
    audit_record(
        actor=actor,
        action="payment.refund_retry",
        target=payment,
        details={"attempt": payment.refund_attempts},
    )
    try:
        stars.stars_refund_retry(payment=payment)
    except RefundRefused:
        raise
    except Exception as exc:
        # Как в stars_refund: исход неизвестен, платёж остаётся refund_pending, повтор безопасен
        logger.exception("stars refund retry %s: outcome unknown", payment.pk)
        raise RefundRefused(f"outcome unknown, retry the refund: {exc}") from exc


def payment_lava_refunded(*, payment: Payment, actor: Any) -> payments.ExternalRefund:
    """Деньги за оплату картой вернули в кабинете lava.top: снять токены через журнал и закрыть платёж.

    API возврата у lava нет — сотрудник отмечает сделанное. Баланс в минус не уходит: недостача — в
    refund_shortfall и долгом пользователя (спишется из вернувшихся холдов). Аудит — в той же транзакции.
    Raises: RefundRefused — не платёж lava или он уже возвращён (повторное нажатие ничего не меняет).
    """
    if payment.method != PaymentMethod.LAVA:
        raise RefundRefused("not a lava.top payment")
    outcome = payments.payment_refunded_externally(
        method=PaymentMethod.LAVA, external_id=payment.external_id, actor=actor
    )
    if outcome is None or not outcome.changed:
        raise RefundRefused("payment is already refunded, nothing changed")
    return outcome
