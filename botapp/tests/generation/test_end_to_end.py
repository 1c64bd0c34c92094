"""Генерация целиком: вебхук → карточка → холд → воркер → Gemini (локальный) → доставка → списание."""

from __future__ import annotations

import pytest

from botapp.billing import ledger
from botapp.models import GenerationJob, JobOutput, JobStatus, TelegramUser
from botapp.sandbox import services
from botapp.sandbox.models import SandboxMessage
from botapp.tests.generation.conftest import Stack
from botapp.tests.support.processes import wait_for
from botapp.tests.telegram.test_chat_paths import Chat, _inline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _user(chat: Chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.chat_id)


def _balance(chat: Chat) -> tuple[int, int]:
    account = ledger.account_for(_user(chat))
    return account.available, account.on_hold


def _button(message: SandboxMessage, prefix: str) -> str:
    return next(
        str(b["callback_data"]) for b in _inline(message) if str(b["callback_data"]).startswith(prefix)
    )


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
    caption = chat.bot_messages()[-2].caption or ""
    assert "Charged: 14 tokens · balance: 6" in caption


def test_a_blocked_prompt_returns_the_tokens_and_explains_why(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "something [blocked]")
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat)
    assert job.status == JobStatus.FAILED
    assert job.error_category == "safety"
    assert _balance(chat) == (20, 0)
    assert len(stack.gemini.requests_to(":generateContent")) == 1  # постоянная ошибка — без повторов
    assert "The tokens were returned to your balance." in chat.bot_messages()[-1].text


def test_provider_429_twice_then_success_gives_one_result_and_one_capture(stack: Stack) -> None:
    chat = Chat(stack.base, "en")
    chat.say("/start")
    card = _generate(chat, "a lighthouse [429x2]")
    chat.press(card, _button(card, "gen:ok:"))
    job = _wait_terminal(chat, timeout=90)
    assert job.status == JobStatus.DELIVERED
    assert len(stack.gemini.requests_to(":generateContent")) == 3
    assert len(services.sandbox_calls(method="sendPhoto", chat_id=chat.chat_id)) == 1
    assert _balance(chat) == (6, 0)


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
