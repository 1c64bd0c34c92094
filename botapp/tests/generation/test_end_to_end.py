"""Генерация целиком: вебхук → карточка → холд → воркер → Gemini (локальный) → доставка → списание."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection

from botapp.billing import ledger
from botapp.generation import drafts
from botapp.models import (
    ChatLogEntry,
    ConversationState,
    GenerationJob,
    GenerationModel,
    JobOutput,
    JobStatus,
    PricingSettings,
    TelegramUser,
)
from botapp.sandbox import services
from botapp.sandbox.models import SandboxMessage
from botapp.tests.generation.conftest import Stack
from botapp.tests.support.processes import wait_for
from botapp.tests.telegram.test_chat_paths import Chat, _inline
from botapp.tests.telegram.test_chat_paths import current_button as _button

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _user(chat: Chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.chat_id)


def _balance(chat: Chat) -> tuple[int, int]:
    account = ledger.account_for(_user(chat))
    return account.available, account.on_hold


def _wait_terminal(chat: Chat, timeout: float = 60) -> GenerationJob:
    def done() -> bool:
        job = GenerationJob.objects.filter(user=_user(chat)).order_by("-pk").first()
        return job is not None and job.status in (
            JobStatus.DELIVERED, JobStatus.FAILED, JobStatus.EXPIRED, JobStatus.CANCELLED,
        ) and (job.status != JobStatus.FAILED or job.notified_at is not None)  # fmt: skip

    wait_for(done, timeout=timeout, what="job finished")
    job = GenerationJob.objects.filter(user=_user(chat)).order_by("-pk").first()
    assert job is not None
    return job


def _generate(chat: Chat, prompt: str) -> SandboxMessage:
    """Промпт → карточка; возвращает карточку."""
    [card] = chat.say(prompt)
    assert _button(card, "gen:ok:")
    return card


def _generated(chat: Chat, prompt: str, timeout: float = 60) -> GenerationJob:
    """Промпт → карточка → ✅ → задание в конечном состоянии."""
    card = _generate(chat, prompt)
    chat.press(card, _button(card, "gen:ok:"))
    return _wait_terminal(chat, timeout=timeout)


def test_text_to_image_charges_the_price_shown_on_the_card(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "a red fox in the snow")
    assert "Price: 14 tokens" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat)
    assert job.status == JobStatus.DELIVERED
    assert job.price == job.charged == 14
    assert _balance(chat) == (20 - 14, 0)
    [call] = stack.gemini.requests_to(":generateContent")
    assert call.path == "/v1beta/models/gemini-3.1-flash-image-preview:generateContent"
    assert call.api_key == stack.gemini.api_key
    image_config = call.body["generationConfig"]["imageConfig"]
    assert (image_config["aspectRatio"], image_config["imageSize"]) == ("1:1", "1K")
    photos = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)
    documents = services.sandbox_calls(method="sendDocument", chat_id=chat.chat_id)
    assert len(photos) == 1
    assert len(documents) == 1
    output = JobOutput.objects.get(job=job)
    assert output.photo_file_id
    assert output.document_file_id
    # Оригинал в пределах лимитов фото уходит как есть, без перекодирования в JPEG
    assert photos[0].params["photo"]["size"] == output.size_bytes
    # Отправленное воркером — в журнале переписки (одной вставкой после вызова Bot API)
    sent_media = ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, direction="out").exclude(
        media_type=""
    )
    assert sorted(sent_media.values_list("media_type", "file_id")) == [
        ("document", output.document_file_id),
        ("photo", output.photo_file_id),
    ]
    caption = chat.bot_messages()[-2].caption or ""
    assert "Charged: 14 tokens · balance: 6 tokens" in caption
    # Правка «генерирую» и chat action — не раньше 3 с после статуса и 1 с после старта.
    # Результат, пришедший раньше этого срока, обходится без них; на медленной машине (холодный
    # воркер) срок может истечь раньше результата — тогда правка законна, но не раньше срока.
    edits = services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id)
    generating = [e for e in edits if "Generating" in e.params["text"]]
    actions = services.sandbox_calls(method="sendChatAction", chat_id=chat.chat_id)
    assert job.started_at is not None
    earliest = max(job.created_at + timedelta(seconds=2.9), job.started_at + timedelta(seconds=0.9))
    if photos[0].created_at < earliest:
        assert not generating
        assert not actions
    assert all(call.created_at >= earliest for call in [*generating, *actions])


def test_a_slow_generation_shows_the_generating_stage_once_the_status_may_be_edited(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    job = _generated(chat, "a slow glacier [slow:5]", timeout=60)
    assert job.status == JobStatus.DELIVERED
    edits = services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id)
    [edit] = [e for e in edits if "Generating" in e.params["text"]]
    assert edit.params["text"].startswith("🎨 ")
    # Не раньше чем через 3 с после статуса (создан вместе с заданием), и до результата
    assert (edit.created_at - job.created_at).total_seconds() >= 2.9
    [photo] = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)
    assert edit.created_at < photo.created_at
    [action] = services.sandbox_calls(method="sendChatAction", chat_id=chat.chat_id)
    assert action.params["action"] == "upload_photo"


def test_a_blocked_prompt_returns_the_tokens_and_explains_why(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    job = _generated(chat, "something [blocked]")
    assert job.status == JobStatus.FAILED
    assert job.error_category == "safety"
    assert _balance(chat) == (20, 0)
    assert len(stack.gemini.requests_to(":generateContent")) == 1  # постоянная ошибка — без повторов
    assert "The tokens were returned to your balance." in chat.bot_messages()[-1].text


def test_provider_429_twice_then_success_gives_one_result_and_one_capture(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    job = _generated(chat, "a lighthouse [429x2]", timeout=90)
    assert job.status == JobStatus.DELIVERED
    assert len(stack.gemini.requests_to(":generateContent")) == 3
    assert len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)) == 1
    assert _balance(chat) == (6, 0)


def test_a_price_raised_after_the_card_was_shown_waits_for_a_new_confirmation(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "a red fox in the snow")
    assert "Price: 14 tokens" in card.text
    # Персонал поднял наценку, пока карточка ждала нажатия
    PricingSettings.objects.update_or_create(pk=1, defaults={"markup": Decimal("4")})
    chat.press(card, _button(card, "gen:ok:"))
    assert not GenerationJob.objects.filter(user=_user(chat)).exists()
    assert _balance(chat) == (20, 0)
    assert chat.bot_messages()[-1].text == (
        "The price has changed: it is now 27 tokens, the card showed 14 tokens. "
        "Check the card and confirm again."
    )
    # Карточка та же, уже с новой ценой; её подтверждение — согласие на новую цену
    [fresh] = [m for m in chat.bot_messages() if m.message_id == card.message_id]
    assert "Price: 27 tokens" in fresh.text
    _fund(chat, 50)
    chat.press(fresh, _button(fresh, "gen:ok:"))
    job = _wait_terminal(chat)
    assert (job.status, job.price, job.charged) == (JobStatus.DELIVERED, 27, 27)


def test_pressing_generate_twice_makes_one_job(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "two moons over a desert")
    data = _button(card, "gen:ok:")
    # Двойное нажатие: оба апдейта созданы до того, как бот убрал кнопку
    first = services.sandbox_user_press_button(
        chat_id=chat.chat_id, message_id=card.message_id, callback_data=data
    )
    second = services.sandbox_user_press_button(
        chat_id=chat.chat_id, message_id=card.message_id, callback_data=data
    )
    chat.deliver(first)
    chat.deliver(second)
    _wait_terminal(chat)
    assert GenerationJob.objects.filter(user=_user(chat)).count() == 1
    assert _balance(chat) == (6, 0)


def test_not_enough_tokens_creates_nothing(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "a castle")
    chat.press(card, _button(card, "gen:c:count:"))  # 2 картинки
    chat.press(card, _button(card, "gen:c:count:"))  # 3 картинки = 41 токен
    chat.press(card, _button(card, "gen:ok:"))
    assert not GenerationJob.objects.exists()
    assert "Not enough tokens: the price is 41, your balance is 20." in chat.bot_messages()[-1].text
    assert _balance(chat) == (20, 0)


def test_a_model_switched_off_after_the_card_refuses_instead_of_charging_another(stack: Stack) -> None:
    """Карточку показали для Pro, модель выключили: отказ с текстом модели, а не задание на другой."""
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "a copper kettle")
    chat.press(card, _button(card, "gen:c:model:"))  # Nano Banana 2 → Pro
    assert "Pro" in chat.bot_messages()[-1].text
    GenerationModel.objects.filter(slug="nano-banana-pro").update(
        is_enabled=False, disabled_text_en="Pro is resting until 10:00."
    )
    chat.press(card, _button(card, "gen:ok:"))
    assert chat.bot_messages()[-1].text == "Pro is resting until 10:00."
    assert not GenerationJob.objects.exists()
    assert _balance(chat) == (20, 0)


def _png(width: int = 64, height: int = 48, color: str = "navy") -> bytes:
    import io

    from PIL import Image

    buffer = io.BytesIO()
    Image.new("RGB", (width, height), color).save(buffer, format="PNG")
    return buffer.getvalue()


def _fund(chat: Chat, amount: int) -> None:
    from botapp.tests.billing.factories import user_fund

    user_fund(_user(chat), amount)


def test_four_outputs_with_one_refused_capture_the_price_of_three(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 50)
    card = _generate(chat, "four kittens [unsafe#2]")
    for _ in range(3):
        chat.press(card, _button(card, "gen:c:count:"))
    assert "Price: 54 tokens" in chat.bot_messages()[-1].text
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat)
    assert job.status == JobStatus.DELIVERED
    assert (job.price, job.charged) == (54, 41)  # 3 × 0.067 $ × 200 = 40.2 → 41
    assert _balance(chat) == (70 - 41, 0)
    assert len(stack.gemini.requests_to(":generateContent")) == 4
    assert len(services.sandbox_calls(method="sendMediaGroup", chat_id=chat.chat_id)) == 1
    assert JobOutput.objects.filter(job=job, status="ok").exclude(photo_file_id="").count() == 3
    texts = [m.text or m.caption or "" for m in chat.bot_messages()]
    assert any("Charged: 41 tokens" in text for text in texts), texts
    # Под подписью альбома — оригинал, правка и оживление каждой картинки по её номеру в альбоме
    [summary] = [m for m in chat.bot_messages() if "Charged: 41 tokens" in (m.text or "")]
    ok = list(
        JobOutput.objects.filter(job=job, status="ok").order_by("index").values_list("index", flat=True)
    )
    assert ok == [0, 2, 3]  # вторую картинку ([unsafe#2]) провайдер отказал
    assert summary.reply_markup is not None
    rows = [[(b["text"], b["callback_data"]) for b in row] for row in summary.reply_markup["inline_keyboard"]]
    assert rows[1:] == [
        [(f"{icon} {n}", f"res:{action}:{job.pk}:{i}") for n, i in enumerate(ok, start=1)]
        for icon, action in (("📎", "orig"), ("✏️", "edit"), ("🎬", "anim"))
    ]
    chat.press(summary, f"res:edit:{job.pk}:3")  # «✏️ 3» — третья картинка альбома, выход с индексом 3
    third = JobOutput.objects.get(job=job, index=3)
    state = ConversationState.objects.get(user=_user(chat))
    assert state.data["refs"] == [drafts.output_ref(third)]


def _deliver_at_once(chat: Chat, updates: list[dict[str, Any]]) -> None:
    """Апдейты альбома — параллельными запросами, как их шлёт Telegram (max_connections > 1)."""

    def deliver(update: dict[str, Any]) -> None:
        try:
            chat.deliver(update)
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=len(updates)) as pool:
        list(pool.map(deliver, updates))


def _cards(chat: Chat) -> list[SandboxMessage]:
    return [m for m in chat.bot_messages() if "gen:ok:" in str(m.reply_markup)]


def test_an_album_with_a_caption_edits_with_all_its_photos(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    colors = ["red", "green", "blue", "white"]
    updates = services.sandbox_user_send_photos(
        chat_id=chat.chat_id, photos=[_png(color=c) for c in colors], caption="merge them"
    )
    _deliver_at_once(chat, updates)
    cards = _cards(chat)
    assert len(cards) == 1  # одна карточка на альбом, ни одно фото не потеряно
    assert "Photos: 4" in cards[0].text
    # Приветствие и карточка — больше ничего
    assert len(services.sandbox_calls(method="sendMessage", chat_id=chat.chat_id)) == 2
    chat.press(cards[0], _button(cards[0], "gen:ok:"))
    job = _wait_terminal(chat)
    assert job.status == JobStatus.DELIVERED
    [call] = stack.gemini.requests_to(":generateContent")
    assert len(call.inline_images()) == 4


def test_an_album_beyond_the_models_limit_keeps_what_fits_and_says_so(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 300)
    [menu] = chat.say("🎬 Video")
    chat.press(menu, "gen:m:video:veo-3-1-lite")  # первый кадр — одно фото
    updates = services.sandbox_user_send_photos(
        chat_id=chat.chat_id, photos=[_png(color="red"), _png(color="green"), _png()], caption="it moves"
    )
    _deliver_at_once(chat, updates)
    [card] = _cards(chat)
    assert "Photos: 1" in card.text
    assert "Extra photos were left out: this model takes at most 1." in card.text
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=90)
    assert job.status == JobStatus.DELIVERED
    assert len(job.reference_file_ids) == 1


def _edit_by_reply(chat: Chat, message_id: int, text: str) -> GenerationJob:
    """Ответ текстом на фото бота → карточка правки с одним фото → запуск → второе доставленное задание."""
    chat.deliver(
        services.sandbox_user_send_text(chat_id=chat.chat_id, text=text, reply_to_message_id=message_id)
    )
    card = chat.bot_messages()[-1]
    assert "Photos: 1" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    wait_for(
        lambda: GenerationJob.objects.filter(user=_user(chat), status=JobStatus.DELIVERED).count() == 2,
        timeout=60,
        what="edit delivered",
    )
    return GenerationJob.objects.filter(user=_user(chat)).latest("pk")


def test_replying_to_a_result_edits_it_from_our_stored_copy(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 50)
    first = _generated(chat, "a blue house")
    photo = JobOutput.objects.get(job=first)
    stack.gemini.clear()
    get_files_before = len(services.sandbox_calls(method="getFile"))
    assert photo.message_id is not None
    edit = _edit_by_reply(chat, photo.message_id, "make the roof red")
    assert edit.source_job_id == first.pk
    [call] = stack.gemini.requests_to(":generateContent")
    assert len(call.inline_images()) == 1
    assert len(services.sandbox_calls(method="getFile")) == get_files_before  # наша копия, не getFile


def test_the_edit_button_takes_the_next_message_as_the_edit(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 50)
    first = _generated(chat, "a blue house")
    result = next(m for m in reversed(chat.bot_messages()) if any(
        str(b["callback_data"]) == f"res:edit:{first.pk}:0" for b in _inline(m)
    ))  # fmt: skip
    chat.press(result, f"res:edit:{first.pk}:0")
    hint, empty_card = chat.bot_messages()[-2:]
    assert hint.text == "Describe what to change in the image."
    assert "Photos: 1" in empty_card.text
    stack.gemini.clear()
    [card] = chat.say("make the roof red")
    assert "Photos: 1" in card.text
    assert "make the roof red" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    edit = _wait_terminal(chat)
    assert (edit.status, edit.source_job_id, edit.prompt) == (
        JobStatus.DELIVERED,
        first.pk,
        "make the roof red",
    )
    [call] = stack.gemini.requests_to(":generateContent")
    assert len(call.inline_images()) == 1


def test_again_on_an_edit_whose_source_passed_retention_takes_the_source_from_telegram(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 50)
    first = _generated(chat, "a blue house")
    photo = JobOutput.objects.get(job=first)
    assert photo.message_id is not None
    edit = _edit_by_reply(chat, photo.message_id, "make the roof red")
    assert edit.reference_file_ids == [f"out:{photo.storage_key}"]
    # Срок хранения убрал нашу копию исходника (как media_retention_sweep): файл и ключ
    [stored] = [p for p in (stack.data_dir / "media").rglob("*") if p.as_posix().endswith(photo.storage_key)]
    stored.unlink()
    JobOutput.objects.filter(pk=photo.pk).update(storage_key="")
    result = next(m for m in reversed(chat.bot_messages()) if any(
        str(b["callback_data"]) == f"res:again:{edit.pk}" for b in _inline(m)
    ))  # fmt: skip
    chat.press(result, f"res:again:{edit.pk}")
    card = chat.bot_messages()[-1]
    get_files_before = len(services.sandbox_calls(method="getFile"))
    chat.press(card, _button(card, "gen:ok:"))
    again = _wait_terminal(chat)
    assert again.pk != edit.pk
    assert again.status == JobStatus.DELIVERED
    # Вход — фото исходника из Telegram по file_id, а не отказ «не удалось сохранить»
    [get_file] = services.sandbox_calls(method="getFile")[get_files_before:]
    assert get_file.params["file_id"] == photo.photo_file_id
    [call] = stack.gemini.requests_to(":generateContent")[-1:]
    assert len(call.inline_images()) == 1


def test_pro_4k_noisy_image_goes_as_a_jpeg_preview_under_the_photo_limit(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 100)
    card = _generate(chat, "static on an old tv [noisy]")
    chat.press(card, _button(card, "gen:c:model:"))  # Nano Banana Pro
    for _ in range(2):
        chat.press(card, _button(card, "gen:c:size:"))  # 1K → 2K → 4K
    text = chat.bot_messages()[-1].text
    assert "Nano Banana Pro" in text
    assert "size 4K" in text
    assert "Price: 48 tokens" in text  # 0.24 $ × 200
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=120)
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 48
    output = JobOutput.objects.get(job=job)
    assert output.size_bytes > 10 * 1024 * 1024  # оригинал больше лимита фото
    [photo] = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)
    assert photo.status == 200
    assert photo.params["photo"]["size"] <= 10 * 1024 * 1024  # превью JPEG под лимит


def _video_card(chat: Chat, model: str, prompt: str) -> SandboxMessage:
    """Новый пользователь с 320 токенами: 🎬 → модель → промпт; возвращает карточку."""
    chat.say("/start")
    _fund(chat, 300)
    [menu] = chat.say("🎬 Video")
    chat.press(menu, f"gen:m:video:{model}")
    [card] = chat.say(prompt)
    return card


def test_text_to_video_and_photo_to_video(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "waves at sunset")
    assert "4 s · 720p · 16:9" in card.text
    assert "Price: 120 tokens" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=90)
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 120
    [submit] = stack.gemini.requests_to(":predictLongRunning")
    assert submit.path == "/v1beta/models/veo-3.1-fast-generate-preview:predictLongRunning"
    assert submit.body["parameters"]["durationSeconds"] == 4
    assert submit.body["parameters"]["aspectRatio"] == "16:9"
    assert len(services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id)) == 1
    # Фото с подписью после выбора видеомодели — первый кадр
    [menu] = chat.say("🎬 Video")
    chat.press(menu, "gen:m:video:veo-3-1-lite")
    chat.deliver(
        services.sandbox_user_send_photos(chat_id=chat.chat_id, photos=[_png()], caption="it moves")[0]
    )
    card = chat.bot_messages()[-1]
    assert "Photos: 1" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    wait_for(
        lambda: GenerationJob.objects.filter(user=_user(chat), status=JobStatus.DELIVERED).count() == 2,
        timeout=90,
        what="photo to video delivered",
    )
    second = stack.gemini.requests_to(":predictLongRunning")[-1]
    assert "image" in second.body["instances"][0]
    assert _balance(chat) == (320 - 120 - 40, 0)  # Lite 4 с 720p: 0.05 × 4 × 200 = 40


def test_a_slow_video_shows_generating_then_sending_stages_in_one_status(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "slow clouds [after:8]")
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=90)
    assert job.status == JobStatus.DELIVERED
    edits = services.sandbox_calls(method="editMessageText", chat_id=chat.chat_id)
    [generating] = [e for e in edits if "Generating" in e.params["text"]]
    assert generating.params["text"].startswith("🎬 ")  # ролик, а не картинка
    [sending] = [e for e in edits if "sending it" in e.params["text"]]
    [video] = services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id)
    # Одно сообщение статуса правится на месте, не чаще раза в 3 с, и обе стадии — до ролика
    assert generating.params["message_id"] == sending.params["message_id"]
    assert (sending.created_at - generating.created_at).total_seconds() >= 2.9
    assert sending.created_at < video.created_at
    actions = services.sandbox_calls(method="sendChatAction", chat_id=chat.chat_id)
    assert [a.params["action"] for a in actions] == ["upload_video", "upload_video"]


def test_a_video_negative_prompt_from_the_card_reaches_veo(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "a busy street at night")
    chat.press(card, _button(card, "gen:neg:"))
    assert "Send what the video should avoid" in chat.bot_messages()[-1].text
    [card] = chat.say("text, watermarks")
    assert "Prompt: a busy street at night" in card.text
    assert "Avoid: text, watermarks" in card.text
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=90)
    assert job.status == JobStatus.DELIVERED
    [submit] = stack.gemini.requests_to(":predictLongRunning")
    assert submit.body["parameters"]["negativePrompt"] == "text, watermarks"
    assert submit.body["instances"][0]["prompt"] == "a busy street at night"


def test_a_video_operation_that_ends_in_an_error_is_released_at_once_and_never_resubmitted(
    stack: Stack,
) -> None:
    """Операция Veo завершилась ошибкой (код 13): не опрашивать до срока, не запускать снова — вернуть."""
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "a storm over the sea [opfail]")
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=60)
    assert job.status == JobStatus.FAILED
    assert job.error_category == "video_failed"
    assert len(stack.gemini.requests_to(":predictLongRunning")) == 1
    # Один опрос увидел ошибку — и всё: задание не висит до срока (30 мин)
    assert len(stack.gemini.requests_to("/operations/")) == 1
    assert _balance(chat) == (320, 0)
    assert chat.bot_messages()[-1].text == (
        "😔 The generation failed: the provider could not make this video. "
        "The tokens were returned to your balance."
    )


def _link_in(text: str) -> str:
    import re

    [url] = re.findall(r"https?://\S+", text)
    return str(url)


def _download(url: str) -> bytes:
    import urllib.request

    with urllib.request.urlopen(url, timeout=30) as response:
        return bytes(response.read())


def test_a_video_over_telegrams_upload_limit_arrives_as_a_working_link_and_is_charged(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "a long slow river [mb:51]")
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=120)
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 120
    assert services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id) == []
    message = chat.bot_messages()[-1]
    assert "The video is larger than Telegram allows" in message.text
    assert len(_download(_link_in(message.text))) == 51 * 1024 * 1024
    output = JobOutput.objects.get(job=job)
    assert output.video_file_id.startswith("link:")
    assert output.message_id == message.message_id
    assert _balance(chat) == (320 - 120, 0)


def test_a_video_telegram_refuses_as_too_large_goes_as_a_link_instead_of_retrying(stack: Stack) -> None:
    """413 от Telegram — не сбой сети: та же загрузка снова не пройдёт, результат уходит ссылкой."""
    chat = Chat(stack.base, "en")
    card = _video_card(chat, "veo-3-1-fast", "a heavy waterfall")
    services.sandbox_inject_failure(
        method="sendVideo", chat_id=chat.chat_id, error_code=413, description="Request Entity Too Large"
    )
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=120)
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 120
    [refused] = services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id)
    assert refused.status == 413
    message = chat.bot_messages()[-1]
    assert "The video is larger than Telegram allows" in message.text
    assert _download(_link_in(message.text))[4:8] == b"ftyp"
    assert _balance(chat) == (320 - 120, 0)


def test_an_original_telegram_refuses_as_too_large_goes_as_a_link(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    TelegramUser.objects.filter(telegram_id=chat.chat_id).update(send_originals_as_files=True)
    services.sandbox_inject_failure(
        method="sendDocument", chat_id=chat.chat_id, error_code=413, description="Request Entity Too Large"
    )
    job = _generated(chat, "a lighthouse at night")
    assert job.status == JobStatus.DELIVERED
    assert job.charged == 14
    [refused] = services.sandbox_calls(method="sendDocument", chat_id=chat.chat_id)
    assert refused.status == 413
    message = chat.bot_messages()[-1]
    assert "The original is larger than Telegram allows" in message.text
    output = JobOutput.objects.get(job=job)
    assert output.document_file_id == "link:"
    [stored] = [p for p in (stack.data_dir / "media").rglob("*") if p.as_posix().endswith(output.storage_key)]
    assert _download(_link_in(message.text)) == stored.read_bytes()
    assert _balance(chat) == (20 - 14, 0)


def test_the_gallery_resends_by_file_id_without_regenerating(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    job = _generated(chat, "a tiny robot")
    output = JobOutput.objects.get(job=job)
    calls_before = len(stack.gemini.requests)
    chat.say("/gallery")
    resent = services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)[-1]
    assert resent.params["photo"] == output.photo_file_id
    # Подпись копии: модель, дата, запрос — что это была за работа
    assert chat.bot_messages()[-1].caption.startswith("Nano Banana 2 · ")
    assert chat.bot_messages()[-1].caption.endswith("\na tiny robot")
    assert len(stack.gemini.requests) == calls_before
    assert _balance(chat) == (6, 0)
    # Ответ на копию из галереи правит результат; наша копия уже удалена сроком хранения —
    # вход берётся из Telegram по file_id
    JobOutput.objects.filter(pk=output.pk).update(storage_key="")
    copy = chat.bot_messages()[-1]
    assert copy.message_id != output.message_id
    _fund(chat, 50)
    get_files_before = len(services.sandbox_calls(method="getFile"))
    edit = _edit_by_reply(chat, copy.message_id, "add a red hat")
    assert edit.source_job_id == job.pk
    assert edit.reference_file_ids == [output.photo_file_id]
    assert len(services.sandbox_calls(method="getFile")) == get_files_before + 1
    [call] = stack.gemini.requests_to(":generateContent")[-1:]
    assert len(call.inline_images()) == 1


def test_delete_me_leaves_no_stored_file_of_that_user(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    job = _generated(chat, "a paper boat")
    output = JobOutput.objects.get(job=job)
    stored = list((stack.data_dir / "media").rglob("*.png"))
    assert any(path.as_posix().endswith(output.storage_key) for path in stored)
    [confirm] = chat.say("/delete_me")
    chat.press(confirm, "del:yes")
    assert not any(
        path.as_posix().endswith(output.storage_key) for path in (stack.data_dir / "media").rglob("*")
    )
    output.refresh_from_db()
    assert output.storage_key == ""
    assert output.photo_file_id == ""
    assert GenerationJob.objects.get(pk=job.pk).prompt == ""


def _sessions_opened() -> int:
    """Сколько соединений к тестовой базе открыто с запуска PostgreSQL (pg_stat_database)."""
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT sessions FROM pg_stat_database WHERE datname = current_database()")
        return int(cursor.fetchone()[0])


def test_the_worker_keeps_its_database_connection_between_tasks(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    _fund(chat, 100)
    # Первое задание прогревает соединения веба и воркера
    _generated(chat, "a warm-up teapot")
    before = _sessions_opened()
    for i in range(4):
        card = _generate(chat, f"a teapot number {i}")
        chat.press(card, _button(card, "gen:ok:"))
        wait_for(
            lambda i=i: (
                GenerationJob.objects.filter(user=_user(chat), status=JobStatus.DELIVERED).count() == i + 2
            ),
            timeout=60,
            what="job delivered",
        )
    # Без CELERY_DB_REUSE_MAX исправление Django в Celery закрывает соединение после каждой задачи:
    # было бы ≥ 4 новых (по одному на задание), а наших проверочных запросов — 2
    assert _sessions_opened() - before <= 3
