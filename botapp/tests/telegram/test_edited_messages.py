"""Правка сообщения пользователем не запускает обработчики заново (и Telegram её нам не шлёт)."""

from __future__ import annotations

import time

import pytest

from botapp.sandbox import services
from botapp.tests.telegram.test_chat_paths import Chat, _post

pytestmark = pytest.mark.django_db(transaction=True)


def _edited(chat: Chat, text: str) -> dict[str, object]:
    now = int(time.time())
    message = {
        "message_id": 900,
        "date": now - 5,
        "edit_date": now,
        "chat": {"id": chat.chat_id, "type": "private", "first_name": "Ann"},
        "from": {"id": chat.chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
        "text": text,
    }
    if text.startswith("/"):
        message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text)}]
    return {"update_id": 7_700_000 + now % 100_000, "edited_message": message}


@pytest.mark.parametrize("text", ["a red fox in the snow", "/start"])
def test_an_edited_message_is_acknowledged_and_answers_nothing(sandbox_mode_server: str, text: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    before = len(services.sandbox_calls(chat_id=chat.chat_id))
    assert _post(sandbox_mode_server, _edited(chat, text)) == 200
    # Ни новой карточки по правленому промпту, ни повторного приветствия
    assert len(services.sandbox_calls(chat_id=chat.chat_id)) == before
