"""Голос, видео, стикер, геометка, файл (не картинка), неизвестная команда в личке: короткий ответ."""

from __future__ import annotations

from typing import Any

import pytest
from django.utils import translation

from botapp.generation import drafts
from botapp.models import ChatLogEntry, ConversationState
from botapp.sandbox import services
from botapp.sandbox.models import SandboxChat, SandboxMessage, SandboxUpdate
from botapp.sandbox.state import default_bot, message_create, message_dict
from botapp.telegram.keyboards import menu_labels
from botapp.tests.sandbox.conftest import png
from botapp.tests.telegram.test_chat_paths import LANGUAGES, Chat, _assert_language

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

UNDERSTAND = "I understand text and photos. Everything I can do is in /help."
UNKNOWN_COMMAND = "I don't know this command. Everything I can do is in /help."
SUPPORT_HINT = "Please send your question as text or a photo: that is what support receives."
THANKS = "Thank you! Support will answer here as soon as possible."

_FILE = {"file_id": "AwACAgIAAxkBAAIB", "file_unique_id": "AgADrw"}
_STATIC = {"is_animated": False, "is_video": False}
CONTENT: dict[str, dict[str, Any]] = {
    "voice": {"voice": {**_FILE, "duration": 3, "mime_type": "audio/ogg"}},
    "video": {"video": {**_FILE, "width": 640, "height": 360, "duration": 5}},
    "video_note": {"video_note": {**_FILE, "length": 240, "duration": 4}},
    "audio": {"audio": {**_FILE, "duration": 120}},
    "sticker": {"sticker": {**_FILE, "type": "regular", "width": 512, "height": 512, **_STATIC}},
    "location": {"location": {"latitude": 55.75, "longitude": 37.62}},
    "contact": {"contact": {"phone_number": "+10000000000", "first_name": "Bob"}},
}


def _send(chat: Chat, kind: str) -> list[SandboxMessage]:
    """Пользователь шлёт то, чего веб-чат песочницы не умеет: сообщение в чате и апдейт, как у Telegram."""
    before = {m.message_id for m in chat.bot_messages()}
    sandbox_chat = SandboxChat.objects.get(chat_id=chat.chat_id)
    message = message_create(chat=sandbox_chat, direction="user", kind="text")
    payload = {**message_dict(message, bot=default_bot()), **CONTENT[kind]}
    update = SandboxUpdate.objects.create(payload={"message": payload})
    chat.deliver({"update_id": update.pk})
    return [m for m in chat.bot_messages() if m.message_id not in before]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", list(CONTENT))
def test_a_message_the_bot_does_not_understand_gets_a_short_answer(
    sandbox_mode_server: str, language: str, kind: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [reply] = _send(chat, kind)
    assert reply.text == chat.expected(UNDERSTAND)
    _assert_language(reply.text, language)


def _send_file(chat: Chat, content: bytes, file_name: str, caption: str = "") -> list[SandboxMessage]:
    before = {m.message_id for m in chat.bot_messages()}
    chat.deliver(
        services.sandbox_user_send_document(
            chat_id=chat.chat_id, content=content, file_name=file_name, caption=caption
        )
    )
    return [m for m in chat.bot_messages() if m.message_id not in before]


def _draft_refs(chat: Chat) -> int:
    draft = drafts.draft_of(ConversationState.objects.get(user__telegram_id=chat.chat_id))
    return len(draft["refs"]) if draft else 0


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_text_file_gets_a_short_answer_and_keeps_the_pending_photo(
    sandbox_mode_server: str, language: str
) -> None:
    """.txt — не запрос на картинку: раньше он давал пустую карточку и терял фото черновика."""
    chat = Chat(sandbox_mode_server, language)
    chat.deliver(services.sandbox_user_send_photos(chat_id=chat.chat_id, photos=[png()])[0])
    assert _draft_refs(chat) == 1
    [reply] = _send_file(chat, b"a cat on the roof", "prompt.txt")
    assert reply.text == chat.expected(UNDERSTAND)
    assert _draft_refs(chat) == 1


def test_an_image_sent_as_a_file_still_makes_a_card_with_the_photo(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    [card] = _send_file(chat, png(), "ref.png", caption="a cat like this")
    assert "Prompt: a cat like this" in card.text
    assert "Photos: 1" in card.text


def test_a_file_in_the_support_step_still_goes_to_support(sandbox_mode_server: str) -> None:
    """Чек или выписка файлом — поддержке, как и раньше: панель умеет отдать его на скачивание."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/support")
    [thanks] = _send_file(chat, b"%PDF-1.4 receipt", "receipt.pdf")
    assert thanks.text == chat.expected(THANKS)
    assert ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, media_type="document").is_support


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("command", ["/foo", "/start@other_bot", "/hlep me"])
def test_an_unknown_command_points_to_help(sandbox_mode_server: str, language: str, command: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    [reply] = chat.say(command)
    assert reply.text == chat.expected(UNKNOWN_COMMAND)
    _assert_language(reply.text, language)


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_voice_message_in_the_support_step_asks_for_text_and_keeps_the_step(
    sandbox_mode_server: str, language: str
) -> None:
    """Голос в поддержку не уходит; вопрос текстом после подсказки — уходит, а не в генерацию."""
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        chat.say(menu_labels()["support"])
    [hint] = _send(chat, "voice")
    assert hint.text == chat.expected(SUPPORT_HINT)
    _assert_language(hint.text, language)
    assert ConversationState.objects.get(user__telegram_id=chat.chat_id).state == "support"
    [thanks] = chat.say("My payment did not arrive")
    assert thanks.text == chat.expected(THANKS)
    assert ChatLogEntry.objects.get(
        user__telegram_id=chat.chat_id, text="My payment did not arrive"
    ).is_support


def test_an_unknown_command_leaves_the_support_step_like_any_command(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/support")
    [reply] = chat.say("/foo")
    assert reply.text == chat.expected(UNKNOWN_COMMAND)
    [card] = chat.say("a small house")
    assert "Nano Banana 2" in card.text


def test_a_service_message_gets_no_answer(sandbox_mode_server: str) -> None:
    """Служебное сообщение (здесь — закреп) не обращение к боту: ответа нет."""
    chat = Chat(sandbox_mode_server, "en")
    sandbox_chat = SandboxChat.objects.get(chat_id=chat.chat_id)
    message = message_create(chat=sandbox_chat, direction="user", kind="text")
    payload = message_dict(message, bot=default_bot())
    pinned = {k: v for k, v in payload.items() if k != "text"}
    update = SandboxUpdate.objects.create(payload={"message": {**payload, "pinned_message": pinned}})
    chat.deliver({"update_id": update.pk})
    assert services.sandbox_calls(method="sendMessage", chat_id=chat.chat_id) == []
