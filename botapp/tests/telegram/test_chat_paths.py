"""Каждая команда и каждый пункт меню на русском и английском — через вебхук и эмулятор Bot API."""

from __future__ import annotations

import itertools
import re
import time
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from django.conf import settings
from django.utils import translation
from django.utils.translation import gettext as _

from botapp.models import ChatLogEntry, TelegramUser
from botapp.sandbox import services
from botapp.sandbox.models import SandboxMessage
from botapp.sandbox.state import BotIdentity
from botapp.telegram.keyboards import menu_labels
from botapp.tests.telegram.test_catalogues import LOCALE, parse_po

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

CYRILLIC = re.compile("[А-Яа-яЁё]")
MSGIDS = list(parse_po(LOCALE / "en" / "LC_MESSAGES" / "django.po"))
LANGUAGES = ["ru", "en"]


class Chat:
    """Поддельный пользователь песочницы, который пишет боту через настоящий вебхук."""

    def __init__(self, base: str, language: str) -> None:
        self.base = base
        self.language = language
        self.user = services.sandbox_user_get_or_create(first_name="Ann", language_code=language)
        self.chat_id = self.user.chat_id

    def deliver(self, update: dict[str, Any]) -> None:
        assert services.sandbox_update_deliver(update_id=update["update_id"], base_url=self.base) == 200

    def say(self, text: str) -> list[SandboxMessage]:
        before = self._bot_ids()
        self.deliver(services.sandbox_user_send_text(chat_id=self.chat_id, text=text))
        return [m for m in self.bot_messages() if m.message_id not in before]

    def press(self, message: SandboxMessage, data: str) -> None:
        self.deliver(
            services.sandbox_user_press_button(
                chat_id=self.chat_id, message_id=message.message_id, callback_data=data
            )
        )

    def bot_messages(self) -> list[SandboxMessage]:
        return services.sandbox_messages(chat_id=self.chat_id, direction="bot")

    def _bot_ids(self) -> set[int]:
        return {m.message_id for m in self.bot_messages()}

    def count(self, phrase: Callable[[int], str], count: int) -> str:
        """Число со словом (formatting.tokens, images…) на языке этого пользователя."""
        with translation.override(self.language):
            return phrase(count)

    def expected(self, msgid_start: str) -> str:
        """Перевод строки каталога, начинающейся с msgid_start (длинные тексты не дублируем в тесте)."""
        exact = [m for m in MSGIDS if m == msgid_start]
        [msgid] = exact or [m for m in MSGIDS if m.startswith(msgid_start)]
        with translation.override(self.language):
            return _(msgid)


def _keyboard_labels(message: SandboxMessage) -> list[str]:
    rows = (message.reply_markup or {}).get("keyboard", [])
    return [button["text"] if isinstance(button, dict) else button for row in rows for button in row]


def _inline(message: SandboxMessage) -> list[dict[str, Any]]:
    return [b for row in (message.reply_markup or {}).get("inline_keyboard", []) for b in row]


def current_button(message: SandboxMessage, prefix: str) -> str:
    """callback_data кнопки, которую пользователь видит сейчас: карточка правится на месте (параметры,
    показанная цена в «✅»), и кнопки прочитанного раньше сообщения могли устареть."""
    message.refresh_from_db()
    return next(
        str(b["callback_data"]) for b in _inline(message) if str(b["callback_data"]).startswith(prefix)
    )


def _assert_language(text: str, language: str) -> None:
    assert bool(CYRILLIC.search(text)) == (language == "ru"), text


@pytest.mark.parametrize("language", LANGUAGES)
def test_start_greets_and_shows_the_main_menu(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    [reply] = chat.say("/start ref_friend42")
    assert reply.text.startswith(chat.expected("Hi, {name}!").format(name="Ann"))
    _assert_language(reply.text, language)
    with translation.override(language):
        labels = list(menu_labels().values())
    assert _keyboard_labels(reply) == labels
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    assert user.start_payload == "ref_friend42"
    assert user.effective_language == language
    # Входящее и исходящее — в журнале переписки
    directions = list(ChatLogEntry.objects.filter(user=user).values_list("direction", flat=True))
    assert sorted(directions) == ["in", "out"]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("command", "msgid"),
    [
        ("/help", "How it works:"),
        ("/terms", "Terms of use:"),
        ("/privacy", "We store your Telegram id"),
        ("/cancel", "Nothing to cancel."),
        ("/gallery", "No works yet."),
        ("/promo", "Send the promo code in one message."),
        ("/topup", "Choose a package."),
        ("/balance", "💰 Available: {available}"),
    ],
)
def test_each_command_answers_in_the_users_language(
    sandbox_mode_server: str, language: str, command: str, msgid: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [reply] = chat.say(command)
    # Текст с подстановками сверяем до первой подстановки
    assert reply.text.startswith(chat.expected(msgid).split("{")[0])
    _assert_language(reply.text, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("item", "msgid"),
    [
        ("image", "Choose the image model:"),
        ("video", "Choose the video model:"),
        ("gallery", "No works yet."),
    ],
)
def test_generation_menu_items_answer_in_the_users_language(
    sandbox_mode_server: str, language: str, item: str, msgid: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        label = menu_labels()[item]
    [reply] = chat.say(label)
    assert reply.text == chat.expected(msgid)
    _assert_language(reply.text, language)


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("kind", ["image", "video"])
def test_with_every_model_of_a_kind_disabled_the_menu_item_says_generation_is_paused(
    sandbox_mode_server: str, language: str, kind: str
) -> None:
    from botapp.models import GenerationModel

    GenerationModel.objects.filter(kind=kind).update(is_enabled=False)
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        [reply] = chat.say(menu_labels()[kind])
    assert reply.text == chat.expected("Generation is paused for now. Please try again later.")
    assert not _inline(reply)
    _assert_language(reply.text, language)


def test_menu_labels_work_in_the_other_language_and_without_the_variation_selector(
    sandbox_mode_server: str,
) -> None:
    chat = Chat(sandbox_mode_server, "en")
    [reply] = chat.say("⚙ Настройки")  # русская подпись без U+FE0F у английского пользователя
    assert reply.text == chat.expected("Settings. Choose the language and how results are delivered:")


@pytest.mark.parametrize("language", LANGUAGES)
def test_settings_switch_language_and_resend_the_menu(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        settings_label = menu_labels()["settings"]
    [card] = chat.say(settings_label)
    other = "en" if language == "ru" else "ru"
    chat.press(card, f"set:lang:{other}")
    card = next(m for m in chat.bot_messages() if m.message_id == card.message_id)
    assert card.edited
    _assert_language(card.text, other)
    menu = chat.bot_messages()[-1]
    with translation.override(other):
        assert _keyboard_labels(menu) == list(menu_labels().values())
    assert TelegramUser.objects.get(telegram_id=chat.chat_id).language == other
    # Повторное нажатие того же языка ничего не правит (и не вызывает 400 «not modified»)
    edits = len(services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id))
    chat.press(card, f"set:lang:{other}")
    assert len(services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id)) == edits


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("field", ["send_originals_as_files", "skip_confirmation"])
def test_settings_toggles_flip_the_users_preferences(
    sandbox_mode_server: str, language: str, field: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [card] = chat.say("/settings")
    before = getattr(TelegramUser.objects.get(telegram_id=chat.chat_id), field)
    chat.press(card, f"set:toggle:{field}")
    assert getattr(TelegramUser.objects.get(telegram_id=chat.chat_id), field) is (not before)
    [answer] = services.sandbox_calls(method="answerCallbackQuery", chat_id=None)[-1:]
    assert answer.params.get("text") == chat.expected("Saved")
    card = next(m for m in chat.bot_messages() if m.message_id == card.message_id)
    button = next(b for b in _inline(card) if b["callback_data"] == f"set:toggle:{field}")
    assert button["text"].startswith("✅" if not before else "▫️")


@pytest.mark.parametrize("language", LANGUAGES)
def test_settings_defaults_for_generation_change_the_next_card(
    sandbox_mode_server: str, language: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [card] = chat.say("/settings")
    chat.press(card, "set:cycle:model")  # Nano Banana 2 → Nano Banana Pro
    chat.press(card, "set:cycle:ratio")  # 1:1 → 2:3
    chat.press(card, "set:cycle:count")  # 1 → 2
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    assert (user.default_image_model, user.default_aspect_ratio, user.default_outputs) == (
        "nano-banana-pro",
        "2:3",
        2,
    )
    card = next(m for m in chat.bot_messages() if m.message_id == card.message_id)
    labels = [b["text"] for b in _inline(card)]
    assert chat.expected("Model: {model} ▸").format(model="Nano Banana Pro") in labels
    [draft] = chat.say("a small house")
    assert "Nano Banana Pro" in draft.text
    assert chat.expected("Ratio {ratio} · size {size} · images: {count}").format(
        ratio="2:3", size="1K", count=2
    ) in (draft.text)


@pytest.mark.parametrize("language", LANGUAGES)
def test_support_takes_the_next_message_into_the_support_thread(
    sandbox_mode_server: str, language: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        label = menu_labels()["support"]
    [prompt] = chat.say(label)
    assert prompt.text == chat.expected(
        "Write your question in one message (you can attach a photo). /cancel to go back."
    )
    [thanks] = chat.say("My payment did not arrive")
    assert thanks.text == chat.expected("Thank you! Support will answer here as soon as possible.")
    entry = ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, text="My payment did not arrive")
    assert entry.is_support
    # Следующее сообщение — уже не в поддержку
    chat.say("hello again")
    assert not ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, text="hello again").is_support


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize(
    ("command", "topic", "invitation"),
    [
        ("/support", "", "Write your question in one message (you can attach a photo)."),
        # Свой текст: пользователь видит, что пришёл по адресу с вопросом о деньгах
        ("/paysupport", "payment", "Questions about payments and refunds: write them in one message"),
    ],
)
def test_support_commands_take_the_next_message_into_the_support_thread(
    sandbox_mode_server: str, language: str, command: str, topic: str, invitation: str
) -> None:
    from dashboard.models import SupportThread

    chat = Chat(sandbox_mode_server, language)
    [prompt] = chat.say(command)
    assert prompt.text == chat.expected(invitation)
    _assert_language(prompt.text, language)
    [thanks] = chat.say("Where are my tokens?")
    assert thanks.text == chat.expected("Thank you! Support will answer here as soon as possible.")
    with translation.override(language):
        assert _keyboard_labels(thanks) == list(menu_labels().values())
    assert ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, text="Where are my tokens?").is_support
    # /paysupport помечает ветку как платёжную, /support — нет
    thread = SupportThread.objects.get(user__telegram_id=chat.chat_id)
    assert (thread.topic, thread.unread_count) == (topic, 1)


@pytest.mark.parametrize("leave", ["/help", "/balance", "balance", "settings"])
@pytest.mark.parametrize("step", ["/support", "/promo"])
def test_a_command_or_a_menu_item_leaves_the_one_message_step(
    sandbox_mode_server: str, step: str, leave: str
) -> None:
    """🆘 → 💰 → запрос на картинку: запрос — это запрос, а не письмо в поддержку и не промокод."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say(step)
    with translation.override("en"):
        chat.say(leave if leave.startswith("/") else menu_labels()[leave])
    [card] = chat.say("a small house")
    assert "Nano Banana 2" in card.text
    assert not ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, text="a small house").is_support
    # Войти в шаг снова можно: следующее сообщение после 🆘 уходит в поддержку
    chat.say(step)
    [reply] = chat.say("SPRING")
    assert "Nano Banana" not in reply.text


def test_a_short_flood_limit_on_a_reply_is_waited_out(sandbox_mode_server: str) -> None:
    """429 от Telegram на ответ обработчика в вебе: ждём retry_after на месте и повторяем, без извинения."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    services.sandbox_inject_failure(
        method="sendMessage", failure="flood", chat_id=chat.chat_id, retry_after=1
    )
    started = time.monotonic()
    [reply] = chat.say("/terms")
    assert time.monotonic() - started >= 1.0
    assert reply.text.startswith(chat.expected("Terms of use"))
    calls = services.sandbox_calls(method="sendMessage", chat_id=chat.chat_id)
    assert [(c.status, c.injected) for c in calls[-2:]] == [(429, True), (200, False)]


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("step", ["/promo", "/support", "draft"])
def test_cancel_says_cancelled_only_when_there_was_something_to_cancel(
    sandbox_mode_server: str, language: str, step: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [nothing] = chat.say("/cancel")
    assert nothing.text == chat.expected("Nothing to cancel.")
    _assert_language(nothing.text, language)
    # Шаг «жду одно сообщение» или черновик (карточка подтверждения запроса)
    chat.say("a small house" if step == "draft" else step)
    [cancelled] = chat.say("/cancel")
    assert cancelled.text == chat.expected("Cancelled.")
    [again] = chat.say("/cancel")
    assert again.text == chat.expected("Nothing to cancel.")
    with translation.override(language):
        menu = list(menu_labels().values())
    assert [_keyboard_labels(m) for m in (nothing, cancelled, again)] == [menu] * 3


@pytest.mark.parametrize("language", LANGUAGES)
def test_a_command_stops_the_video_card_waiting_for_what_to_avoid(
    sandbox_mode_server: str, language: str
) -> None:
    """➖ Избегать… → /help → текст: это новый запрос, а не негативный промпт прежнего видео."""
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        [menu] = chat.say(menu_labels()["video"])
    chat.press(menu, "gen:m:video:veo-3-1-fast")
    [card] = chat.say("a busy street at night")
    chat.press(
        card, next(b["callback_data"] for b in _inline(card) if b["callback_data"].startswith("gen:neg:"))
    )
    chat.say("/help")
    [reply] = chat.say("a cat surfing")
    assert chat.expected("Avoid: {negative}").split("{")[0] not in reply.text
    assert "Nano Banana 2" in reply.text
    assert "a cat surfing" in reply.text


@pytest.mark.parametrize("language", LANGUAGES)
def test_help_lists_every_published_command_with_its_description(
    sandbox_mode_server: str, language: str
) -> None:
    """Справка и меню команд Telegram — из одного списка: /promo, /invite, /cancel не пропадут из /help."""
    from botapp.telegram.commands import COMMANDS, command_descriptions

    chat = Chat(sandbox_mode_server, language)
    [reply] = chat.say("/help")
    with translation.override(language):
        published = {c.command: c.description for c in command_descriptions()}
    listed = dict(line[1:].split(" — ", 1) for line in reply.text.splitlines() if line.startswith("/"))
    assert listed == {name: published[name] for name in COMMANDS if name not in ("start", "help")}
    _assert_language(reply.text, language)


@pytest.mark.parametrize(
    ("language", "help_line", "delete_line", "empty_history"),
    [
        (
            "ru",
            "• Каждая генерация оплачивается токенами; цену вы видите до подтверждения.",
            "Баланс токенов сохранится, история операций останется обезличенной.",
            "Операций пока нет.",
        ),
        (
            "en",
            "• Every generation costs tokens;",
            "Your token balance stays, and its history is kept anonymised.",
            "No transactions yet.",
        ),
    ],
)
def test_help_delete_me_and_an_empty_history_read_well(
    sandbox_mode_server: str, language: str, help_line: str, delete_line: str, empty_history: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [help_reply] = chat.say("/help")
    assert help_line in help_reply.text
    [question] = chat.say("/delete_me")
    assert delete_line in question.text
    [reply] = chat.say("/balance")
    chat.press(reply, "bal:hist:0")
    assert chat.bot_messages()[-1].text == empty_history


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_gallery_command_is_described_like_its_menu_item(language: str) -> None:
    """/gallery в меню команд Telegram и «🖼 Мои работы» на клавиатуре — одно и то же название."""
    from botapp.telegram.commands import command_descriptions

    with translation.override(language):
        described = {c.command: c.description for c in command_descriptions()}
        assert described["gallery"] == menu_labels()["gallery"].removeprefix("🖼 ")


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_gallery_pages_older_works_with_the_same_button_as_the_history(
    sandbox_mode_server: str, language: str
) -> None:
    """«Ещё ▶️» в галерее и «Раньше ▶️» в истории звали к одному и тому же по-разному; кнопку узнаёт gal:<n>."""
    from django.utils import timezone

    from botapp.models import GenerationJob, GenerationModel, JobOutput
    from botapp.tests.sandbox.conftest import png

    chat = Chat(sandbox_mode_server, language)
    [photo] = services.sandbox_user_send_photos(chat_id=chat.chat_id, photos=[png()])
    chat.deliver(photo)
    file_id = photo["message"]["photo"][-1]["file_id"]
    job = GenerationJob.objects.create(
        user=TelegramUser.objects.get(telegram_id=chat.chat_id),
        model=GenerationModel.objects.get(slug="nano-banana-2"),
        kind="image",
        status="delivered",
        idempotency_key=f"gallery-pages-{chat.chat_id}",
        prompt="a lighthouse",
        price=14,
        deadline=timezone.now(),
    )
    for index in range(6):
        JobOutput.objects.create(
            job=job, index=index, status="ok", photo_file_id=file_id, delivered_at=timezone.now()
        )
    chat.say("/gallery")
    more = chat.bot_messages()[-1]
    assert more.text == chat.expected("Older works:")
    [button] = _inline(more)
    assert (button["text"], button["callback_data"]) == (chat.expected("Older ▶️"), "gal:1")
    before = len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id))
    chat.press(more, button["callback_data"])
    assert len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)) == before + 1
    assert chat.bot_messages()[-1].text != chat.expected("Older works:")  # шестая — последняя


def test_incoming_photo_and_document_are_logged_with_media_type_and_file_id(sandbox_mode_server: str) -> None:
    from botapp.tests.sandbox.conftest import png

    chat = Chat(sandbox_mode_server, "en")
    [photo] = services.sandbox_user_send_photos(
        chat_id=chat.chat_id, photos=[png()], caption="a cat like this"
    )
    chat.deliver(photo)
    document = services.sandbox_user_send_document(chat_id=chat.chat_id, content=png(), file_name="ref.png")
    chat.deliver(document)
    logged = list(
        ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, direction="in")
        .order_by("id")
        .values_list("media_type", "file_id", "text", "message_id")
    )
    assert logged == [
        (
            "photo",
            photo["message"]["photo"][-1]["file_id"],
            "a cat like this",
            photo["message"]["message_id"],
        ),
        ("document", document["message"]["document"]["file_id"], "", document["message"]["message_id"]),
    ]
    assert all(file_id for _media, file_id, _text, _id in logged)


@pytest.mark.parametrize("language", LANGUAGES)
def test_delete_me_asks_first_then_erases_personal_data(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    [question] = chat.say("/delete_me")
    chat.press(question, "del:no")
    assert ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id).exists()
    [question] = chat.say("/delete_me")
    chat.press(question, "del:yes")
    answer = next(m for m in chat.bot_messages() if m.message_id == question.message_id)
    assert answer.text == chat.expected("Your data has been deleted. Send /start to begin again.")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    assert (user.first_name, user.username, user.start_payload) == ("", "", "")
    # Журнал переписки пуст, кроме исходящего подтверждения удаления, если оно пришло после стирания
    assert not ChatLogEntry.objects.filter(user=user, direction="in").exists()


def test_after_delete_me_broadcasts_skip_the_user_until_they_write_again(sandbox_mode_server: str) -> None:
    from dashboard.selectors.broadcasts import broadcast_audience

    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    [question] = chat.say("/delete_me")
    chat.press(question, "del:yes")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    assert user.data_erased_at is not None
    assert not broadcast_audience(audience="ids", ids=[chat.chat_id]).exists()
    chat.say("/start")
    assert broadcast_audience(audience="ids", ids=[chat.chat_id]).exists()


def test_commands_are_published_for_ru_en_and_default(sandbox_mode_server: str) -> None:
    from io import StringIO

    from django.core.management import call_command
    from django.test import override_settings

    # Веб публикует команды один раз на процесс и набор; здесь — та же публикация командой
    with override_settings(TELEGRAM_API_BASE_URL=f"{sandbox_mode_server}/sandbox/api"):
        call_command("publish_commands", stdout=StringIO())
    ru = services.sandbox_commands(language_code="ru")
    en = services.sandbox_commands(language_code="en")
    default = services.sandbox_commands()
    assert [c["command"] for c in ru] == [c["command"] for c in en] == [c["command"] for c in default]
    assert "delete_me" in [c["command"] for c in ru]


_group_ids = itertools.count(9_000_000_000)
BOT_ID = int(settings.TELEGRAM_BOT_TOKEN.split(":")[0])
BOT_USERNAME = BotIdentity(BOT_ID).user()["username"]
# Своя группа на каждое сообщение: лимит Telegram на группу (20 в минуту) общий для всех тестов
_group_chats = itertools.count(1001234567890)
MENTION = re.compile(r"@\w+")


def _group_update(text: str, *, reply_to_bot: bool = False, text_mention_bot: bool = False) -> dict[str, Any]:
    """Сообщение в супергруппе с сущностями, как их размечает Telegram (тексты тестов — ASCII)."""
    update_id = next(_group_ids)
    chat = {"id": -next(_group_chats), "type": "supergroup", "title": "Friends"}
    message: dict[str, Any] = {
        "message_id": update_id % 100000,
        "date": int(time.time()),
        "chat": chat,
        "from": {"id": 4242, "is_bot": False, "first_name": "Bob", "language_code": "en"},
        "text": text,
    }
    entities: list[dict[str, Any]] = []
    if text.startswith("/"):
        entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
    else:
        entities += [
            {"type": "mention", "offset": m.start(), "length": len(m.group())} for m in MENTION.finditer(text)
        ]
    if text_mention_bot:
        # Упоминание по имени (у бота без username или из подсказки клиента): сущность с user
        bot_user = {"id": BOT_ID, "is_bot": True, "first_name": "NanoBanana"}
        entities.append(
            {"type": "text_mention", "offset": 0, "length": len(text.split()[0]), "user": bot_user}
        )
    if entities:
        message["entities"] = entities
    if reply_to_bot:
        message["reply_to_message"] = {
            "message_id": 1,
            "date": int(time.time()),
            "chat": chat,
            "from": {"id": BOT_ID, "is_bot": True, "first_name": "Bot"},
            "text": "earlier",
        }
    return {"update_id": update_id, "message": message}


def _post(base: str, update: dict[str, Any]) -> int:
    headers = {"X-Telegram-Bot-Api-Secret-Token": settings.TG_WEBHOOK_SECRET}
    return httpx.post(f"{base}/telegram/webhook/", json=update, headers=headers, timeout=30).status_code


@pytest.mark.parametrize(
    "update",
    [
        pytest.param(lambda: _group_update("/start"), id="command"),
        pytest.param(lambda: _group_update(f"/help@{BOT_USERNAME}"), id="command-to-us"),
        pytest.param(lambda: _group_update(f"/help@{BOT_USERNAME.upper()}"), id="command-to-us-any-case"),
        pytest.param(lambda: _group_update(f"hey @{BOT_USERNAME} draw a cat"), id="mention"),
        pytest.param(lambda: _group_update("Nano draw a cat", text_mention_bot=True), id="text-mention"),
        pytest.param(lambda: _group_update("thanks", reply_to_bot=True), id="reply-to-bot"),
    ],
)
def test_in_groups_a_message_addressed_to_the_bot_gets_the_pointer_to_the_private_chat(
    sandbox_mode_server: str, update: Any
) -> None:
    sent = update()
    assert _post(sandbox_mode_server, sent) == 200
    [reply] = services.sandbox_calls(method="sendMessage", chat_id=sent["message"]["chat"]["id"])
    with translation.override("en"):
        expected = _("I work in a private chat: {link}").format(
            link=f"https://t.me/{BOT_USERNAME}?start=group"
        )
    assert reply.params["text"] == expected
    assert str(sent["message"]["message_id"]) in str(reply.params["reply_parameters"])


@pytest.mark.parametrize(
    "text",
    [
        "just chatting with friends",
        "/help@otherbot",
        "/start@otherbot hello",
        "@otherbot draw a cat",
        f"@{BOT_USERNAME}_fan is my friend",
    ],
)
def test_in_groups_messages_not_addressed_to_the_bot_get_no_answer(
    sandbox_mode_server: str, text: str
) -> None:
    update = _group_update(text)
    assert _post(sandbox_mode_server, update) == 200
    assert services.sandbox_calls(chat_id=update["message"]["chat"]["id"]) == []
