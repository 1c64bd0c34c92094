"""Вход генерации: файл больше, чем Telegram отдаёт боту, получает понятный ответ сразу, без холда."""

from __future__ import annotations

import pytest

from botapp.models import GenerationJob, TelegramUser
from botapp.sandbox import services
from botapp.tests.billing.factories import balance
from botapp.tests.telegram.test_chat_paths import Chat, _inline

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "This file is too large: 21.0 MB. Bots can download files up to 20 MB"),
        ("ru", "Файл слишком большой: 21.0 МБ. Бот может скачать файл не больше 20 МБ"),
    ],
)
def test_an_image_file_over_20_mb_is_refused_with_a_clear_message(
    sandbox_mode_server: str, language: str, expected: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    before = {m.message_id for m in chat.bot_messages()}
    chat.deliver(
        services.sandbox_user_send_document(
            chat_id=chat.chat_id,
            content=b"\x89PNG\r\n\x1a\n" + b"\0" * (21 * 1024 * 1024 - 8),
            file_name="huge.png",
            caption="make it brighter",
        )
    )
    [reply] = [m for m in chat.bot_messages() if m.message_id not in before]
    assert reply.text.startswith(expected)
    assert not GenerationJob.objects.exists()
    assert services.sandbox_calls(method="getFile") == []


@pytest.mark.parametrize(
    ("language", "expected"),
    [
        ("en", "The prompt is too long: 2100 characters, at most 2000. Please shorten it."),
        ("ru", "Запрос слишком длинный: 2100 символов, можно не больше 2000. Сократите его, пожалуйста."),
    ],
)
def test_a_too_long_prompt_is_flagged_on_the_card_and_refused_without_charging(
    sandbox_mode_server: str, language: str, expected: str
) -> None:
    """Предупреждение сразу на карточке; «Сгенерировать» — понятный отказ, без холда и задания."""
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    [card] = chat.say("x" * 2100)
    assert f"⚠️ {expected}" in card.text
    [generate] = [b for b in _inline(card) if b["callback_data"].startswith("gen:ok")]
    chat.press(card, generate["callback_data"])
    assert chat.bot_messages()[-1].text == expected
    assert not GenerationJob.objects.exists()
    assert balance(TelegramUser.objects.get(telegram_id=chat.chat_id)) == (20, 0)
