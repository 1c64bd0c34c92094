"""Ошибки биллинга: понятные вызывающему коду и переводимые в текст для пользователя или админа."""

from __future__ import annotations


class BillingError(Exception):
    """База ошибок денег."""


class InsufficientFunds(BillingError):
    """Доступного остатка не хватает: условное списание не прошло, ничего не изменилось."""


class HoldAlreadySettled(BillingError):
    """Холд уже урегулирован другим способом (или другой суммой): второе урегулирование запрещено."""


class RefundRefused(BillingError):
    """Возврат платежа невозможен; причина — в тексте (показывается админу)."""


class PricingError(BillingError):
    """Параметры запроса не разрешены каталогом модели."""
