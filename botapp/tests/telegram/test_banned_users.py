"""Забаненный персоналом пользователь: сообщение раз в сутки, кнопки не зависают, оплата доходит."""

from __future__ import annotations

import pytest

from botapp.models import Payment, TelegramUser, TokenPackage
from botapp.sandbox import services
from botapp.tests.billing.factories import balance
from botapp.tests.telegram.test_billing_chat import refunded_payment_update
from botapp.tests.telegram.test_chat_paths import LANGUAGES, Chat, _group_update, _post

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SUSPENDED = "Your access to the bot is suspended. Contact support if this is a mistake."


def _ban(chat: Chat) -> None:
    TelegramUser.objects.filter(telegram_id=chat.chat_id).update(is_banned=True)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_banned_user_who_spoke_in_a_group_still_gets_the_notice_in_private(
    sandbox_mode_server: str, language: str
) -> None:
    """Обращение к боту в группе не отвечается и не тратит суточное сообщение о бане."""
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    _ban(chat)
    update = _group_update("/help")
    user = {"id": chat.chat_id, "is_bot": False, "first_name": "Ann", "language_code": language}
    update["message"]["from"] = user
    assert _post(sandbox_mode_server, update) == 200
    assert services.sandbox_calls(chat_id=update["message"]["chat"]["id"]) == []
    [notice] = chat.say("/help")
    assert notice.text == chat.expected(SUSPENDED)
    assert chat.say("/help") == []  # и по-прежнему одно в сутки


def test_a_banned_users_button_press_is_answered_silently(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    [card] = chat.say("/settings")
    before = TelegramUser.objects.get(telegram_id=chat.chat_id).skip_confirmation
    _ban(chat)
    answered = len(services.sandbox_calls(method="answerCallbackQuery"))
    chat.press(card, "set:toggle:skip_confirmation")
    [answer] = services.sandbox_calls(method="answerCallbackQuery")[answered:]
    assert not answer.params.get("text")
    assert TelegramUser.objects.get(telegram_id=chat.chat_id).skip_confirmation is before
    assert services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id) == []


def test_a_payment_completed_after_the_ban_is_still_credited(sandbox_mode_server: str) -> None:
    """Забанили между pre_checkout и оплатой: звёзды списаны — токены зачисляются сразу, не сверкой."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    package = TokenPackage.objects.get(stars=50)
    [menu] = chat.say("/topup")
    chat.press(menu, f"top:stars:{package.pk}")
    [invoice] = [m for m in chat.bot_messages() if m.kind == "invoice"]
    query = services.sandbox_user_pay_invoice(chat_id=chat.chat_id, message_id=invoice.message_id)
    chat.deliver(query)  # pre_checkout принят — эмулятор ставит в очередь successful_payment
    _ban(chat)
    assert services.sandbox_updates_deliver_pending(base_url=chat.base) == [200]
    payment = Payment.objects.get()
    assert payment.tokens == package.total_tokens
    assert balance(TelegramUser.objects.get(telegram_id=chat.chat_id)) == (20 + package.total_tokens, 0)
    # Возврат звёзд от Telegram тоже доходит до журнала токенов
    refund = refunded_payment_update(chat, payment, stars=package.stars, message_id=999002)
    assert services.sandbox_update_deliver(update_id=refund.pk, base_url=chat.base) == 200
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert balance(TelegramUser.objects.get(telegram_id=chat.chat_id)) == (20, 0)
