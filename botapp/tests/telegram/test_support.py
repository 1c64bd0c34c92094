"""Поддержка в чате: оповещение сотрудника и обращение альбомом — через вебхук и эмулятор Bot API."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from django.db import connection

from botapp.models import ChatLogEntry
from botapp.sandbox import services
from botapp.tests.sandbox.conftest import png
from botapp.tests.telegram.test_chat_paths import LANGUAGES, Chat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

PRIVATE_TEXT = "my card 4111 and my address Baker St 221b"


def _deliver_closing(chat: Chat, update: dict[str, Any]) -> None:
    """Доставка из потока пула: его соединение с БД закрыть, иначе тестовую БД не удалить."""
    try:
        chat.deliver(update)
    finally:
        connection.close()


def _staff(base: str) -> Chat:
    """Сотрудник панели, привязавший свой Telegram (оповещения о новых обращениях включены)."""
    from dashboard.models import StaffProfile

    staff = Chat(base, "ru")
    staff.say("/start")
    agent = get_user_model().objects.create_user(username="agent", password="x", is_staff=True)
    StaffProfile.objects.create(user=agent, telegram_id=staff.chat_id, notify_support=True)
    return staff


def test_the_staff_alert_stays_out_of_the_chat_log_so_delete_me_leaves_no_copy(
    sandbox_mode_server: str,
) -> None:
    """Оповещение с текстом клиента уходит сотруднику, но не в журнал его переписки: /delete_me стирает всё"""
    staff = _staff(sandbox_mode_server)
    customer = Chat(sandbox_mode_server, "en")
    customer.say("/support")
    customer.say(PRIVATE_TEXT)
    [alert] = [m for m in staff.bot_messages() if m.text.startswith("🆘")]
    assert PRIVATE_TEXT in alert.text  # сотрудник видит, о чём обращение
    staff_log = ChatLogEntry.objects.filter(user__telegram_id=staff.chat_id, direction="out")
    assert staff_log.exists()  # ответ на его /start в журнале есть
    assert not staff_log.filter(text__contains="4111").exists()
    [question] = customer.say("/delete_me")
    customer.press(question, "del:yes")
    assert not ChatLogEntry.objects.filter(text__contains="4111").exists()


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("parallel", [False, True], ids=["in-order", "parallel"])
def test_a_question_sent_as_an_album_goes_to_support_whole_with_one_confirmation(
    sandbox_mode_server: str, language: str, parallel: bool
) -> None:
    """Telegram шлёт фото альбома отдельными апдейтами (и параллельно): все — в ветку, а не в генерацию."""
    from dashboard.models import SupportThread

    chat = Chat(sandbox_mode_server, language)
    chat.say("/paysupport")
    before = {m.message_id for m in chat.bot_messages()}
    album = services.sandbox_user_send_photos(
        chat_id=chat.chat_id, photos=[png(), png(3, 2), png(4, 3)], caption="Charged twice, see screenshots"
    )
    if parallel:
        with ThreadPoolExecutor(len(album)) as pool:
            list(pool.map(lambda update: _deliver_closing(chat, update), album))
    else:
        for update in album:
            chat.deliver(update)
    [thanks] = [m for m in chat.bot_messages() if m.message_id not in before]
    assert thanks.text == chat.expected("Thank you! Support will answer here as soon as possible.")
    photos = ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, direction="in", media_type="photo")
    assert sorted(photos.values_list("is_support", flat=True)) == [True, True, True]
    thread = SupportThread.objects.get(user__telegram_id=chat.chat_id)
    assert (thread.topic, thread.unread_count) == ("payment", 3)
    # Шаг закрыт: следующий текст — запрос на картинку
    [card] = chat.say("a small house")
    assert "Nano Banana 2" in card.text
