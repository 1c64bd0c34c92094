"""Telegram Stars: возврат платежа и список транзакций бота. Возвращает простые dataclass."""

from __future__ import annotations

from dataclasses import dataclass

from telegram.error import BadRequest, NetworkError, TelegramError

from botapp.telegram.outbound import bot_call
from botapp.telegram.sender import SendDeferred


class StarsRefundFailed(Exception):
    """Telegram отказал в возврате; текст — его описание."""


class StarsRefundUnknown(Exception):
    """Таймаут или обрыв: дошёл ли запрос, неизвестно — возврат повторяют, а не компенсируют."""


@dataclass(frozen=True)
class StarIncoming:
    """Входящая оплата звёздами от пользователя."""

    charge_id: str
    telegram_id: int
    amount: int
    payload: str


@dataclass(frozen=True)
class StarPage:
    incoming: list[StarIncoming]
    refunded: list[str]
    size: int


def stars_refund(*, telegram_id: int, charge_id: str) -> None:
    """refundStarPayment; «уже возвращён» считается успехом (повтор после сбоя)."""
    try:
        bot_call(
            lambda bot: bot.refund_star_payment(user_id=telegram_id, telegram_payment_charge_id=charge_id)
        )
    except SendDeferred as exc:
        # 429: запрос не выполнен; «неизвестно» — повтор безопасен («уже возвращён» = успех)
        raise StarsRefundUnknown(str(exc)) from exc
    except BadRequest as exc:
        if "CHARGE_ALREADY_REFUNDED" in str(exc).upper():
            return
        raise StarsRefundFailed(str(exc)) from exc
    except NetworkError as exc:
        # BadRequest — подкласс NetworkError в PTB, поэтому он разобран выше
        raise StarsRefundUnknown(str(exc)) from exc
    except TelegramError as exc:
        raise StarsRefundFailed(str(exc)) from exc


def stars_transactions(*, offset: int, limit: int = 100) -> StarPage:
    """Страница getStarTransactions в хронологическом порядке."""
    result = bot_call(lambda bot: bot.get_star_transactions(offset=offset, limit=limit))
    incoming: list[StarIncoming] = []
    refunded: list[str] = []
    for tx in result.transactions:
        source, receiver = tx.source, tx.receiver
        if source is not None and source.type == "user":
            user = getattr(source, "user", None)
            if user is not None:
                payload = getattr(source, "invoice_payload", None) or ""
                incoming.append(StarIncoming(tx.id, user.id, int(tx.amount), payload))
        elif receiver is not None and receiver.type == "user":
            refunded.append(tx.id)
    return StarPage(incoming=incoming, refunded=refunded, size=len(result.transactions))
