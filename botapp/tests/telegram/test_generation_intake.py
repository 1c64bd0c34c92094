"""Вход генерации: файл больше, чем Telegram отдаёт боту, получает понятный ответ сразу, без холда."""

from __future__ import annotations

import pytest
from django.utils import translation

from botapp.models import ConversationState, GenerationJob, TelegramUser
from botapp.sandbox import services
from botapp.telegram.keyboards import menu_labels
from botapp.tests.billing.factories import balance, user_fund
from botapp.tests.telegram.test_chat_paths import Chat, _inline, current_button

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
    """Предупреждение сразу на карточке и без «Сгенерировать»; без карточки — понятный отказ, без холда."""
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    [card] = chat.say("x" * 2100)
    assert f"⚠️ {expected}" in card.text
    assert "x" * 700 + "…" in card.text  # показана только часть запроса, и это видно
    actions = [b["callback_data"].split(":")[1] for b in _inline(card)]
    assert actions == ["c", "c", "c", "c", "x"]  # параметры, модель и отмена — без «✅»
    TelegramUser.objects.filter(telegram_id=chat.chat_id).update(skip_confirmation=True)
    [refusal] = chat.say("y" * 2100)
    assert refusal.text == expected
    assert not GenerationJob.objects.exists()
    assert balance(TelegramUser.objects.get(telegram_id=chat.chat_id)) == (20, 0)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_only_the_latest_card_of_a_draft_is_live(sandbox_mode_server: str, language: str) -> None:
    """Прежняя копия карточки того же черновика показывает уже не то: её кнопки ничего не меняют.

    Иначе «Модель ▸» на старой карточке меняла черновик, а «✅» на новой (где написана прежняя
    модель и цена) запускала другую модель.
    """
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        [menu] = chat.say(menu_labels()["video"])
    chat.press(menu, "gen:m:video:veo-3-1-fast")
    [old] = chat.say("a busy street at night")
    chat.press(old, current_button(old, "gen:neg:"))
    [new] = chat.say("blur")
    assert "Veo 3.1 Fast" in new.text

    chat.press(old, current_button(old, "gen:c:model:"))
    answer = services.sandbox_calls(method="answerCallbackQuery")[-1]
    assert answer.params.get("text") == chat.expected("This card is no longer active.")
    old.refresh_from_db()
    assert _inline(old) == []  # кнопки мёртвой карточки убраны
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    state = ConversationState.objects.get(user=user)
    assert state.data["model"] == "veo-3-1-fast"

    user_fund(user, 500)
    chat.press(new, current_button(new, "gen:ok:"))
    [job] = GenerationJob.objects.filter(user=user)
    assert job.model.slug == "veo-3-1-fast"


@pytest.mark.parametrize("language", ["ru", "en"])
def test_choosing_a_model_names_it_in_the_reply(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    with translation.override(language):
        [menu] = chat.say(menu_labels()["image"])
    pro = next(b for b in _inline(menu) if b["callback_data"] == "gen:m:image:nano-banana-pro")
    chat.press(menu, pro["callback_data"])
    hint = chat.bot_messages()[-1]
    assert hint.text.splitlines()[0] == pro["text"].split(" · ")[0]
    assert hint.text.splitlines()[1] == chat.expected(
        "Send a prompt. To edit or combine photos, send them with the prompt as the caption."
    )


def test_veo_quality_there_and_back_keeps_the_duration_the_user_had(sandbox_mode_server: str) -> None:
    """1080p у Veo — только 8 с; вернулись к 720p — вернулась и прежняя длительность, а не 8 с."""
    chat = Chat(sandbox_mode_server, "en")
    with translation.override("en"):
        [menu] = chat.say(menu_labels()["video"])
    chat.press(menu, "gen:m:video:veo-3-1-lite")
    [card] = chat.say("a kite over the sea")

    def params() -> str:
        card.refresh_from_db()
        return next(line for line in card.text.splitlines() if " s · " in line)

    assert params() == "4 s · 720p · 16:9"
    chat.press(card, current_button(card, "gen:c:resolution:"))
    assert params() == "8 s · 1080p · 16:9"
    chat.press(card, current_button(card, "gen:c:resolution:"))
    assert params() == "4 s · 720p · 16:9"


def test_a_double_tap_on_generate_keeps_the_cancel_button_of_the_started_job(
    sandbox_mode_server: str,
) -> None:
    """Второе нажатие «✅» приходит на сообщение, которое уже стало статусом задания: его «✖️» остаётся."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    [card] = chat.say("a lighthouse at dawn")
    generate = current_button(card, "gen:ok:")
    # Оба нажатия сделаны до того, как карточка стала статусом (двойной тап): апдейты готовы заранее
    taps = [
        services.sandbox_user_press_button(
            chat_id=chat.chat_id, message_id=card.message_id, callback_data=generate
        )
        for _ in range(2)
    ]
    for tap in taps:
        chat.deliver(tap)
    [job] = GenerationJob.objects.filter(user__telegram_id=chat.chat_id)
    answer = services.sandbox_calls(method="answerCallbackQuery")[-1]
    assert answer.params.get("text") == "This card is no longer active."
    card.refresh_from_db()
    assert [b["callback_data"] for b in _inline(card)] == [f"job:x:{job.pk}"]


def test_a_shorter_prompt_after_the_too_long_warning_replaces_it_on_the_same_draft(
    sandbox_mode_server: str,
) -> None:
    """«Сократите» — значит, следующий текст и есть сокращённый запрос: модель и черновик остаются."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    [card] = chat.say("x" * 2100)
    chat.press(card, current_button(card, "gen:c:model:"))  # Nano Banana 2 → Pro
    card.refresh_from_db()
    assert "Nano Banana Pro" in card.text
    [shorter] = chat.say("a short prompt")
    assert "Nano Banana Pro" in shorter.text
    assert "a short prompt" in shorter.text
    assert "gen:ok:" in str(shorter.reply_markup)
