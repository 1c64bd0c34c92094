"""Лимиты частоты эмулятора: GCRA в Redis (общий для процессов) и замена в памяти без Redis."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.test import override_settings
from telegram import Bot
from telegram.error import RetryAfter

from botapp.sandbox import ratelimit
from botapp.tests.sandbox.conftest import LiveSandbox, new_chat_id

STRICT = {"TELEGRAM_RATE_OVERALL": 10.0, "TELEGRAM_RATE_PER_CHAT": 1.0, "TELEGRAM_RATE_PER_GROUP": 20.0}


@pytest.fixture(params=["redis", "local"])
def backend(request: pytest.FixtureRequest) -> Any:
    """Оба хранилища состояния ведут себя одинаково."""
    redis_url = None if request.param == "redis" else ""
    overrides = {**STRICT, **({} if redis_url is None else {"REDIS_URL": redis_url})}
    with override_settings(**overrides):
        ratelimit.reset()
        yield request.param


def test_a_private_chat_takes_a_burst_of_three_then_waits_a_second(backend: str) -> None:
    waits = [ratelimit.acquire(101) for _ in range(4)]

    assert waits[:3] == [0, 0, 0]
    assert 0 < waits[3] <= 1000
    assert ratelimit.retry_after_seconds(waits[3]) == 1


def test_a_group_chat_is_limited_per_minute(backend: str) -> None:
    waits = [ratelimit.acquire(-100500) for _ in range(4)]

    assert waits[:3] == [0, 0, 0]
    assert 2000 < waits[3] <= 3000  # 20 в минуту — одно в три секунды


def test_the_overall_limit_spans_all_chats(backend: str) -> None:
    # Допуск в секунду при 10/с: 11 сразу, следующее — через интервал
    waits = [ratelimit.acquire(1000 + i) for i in range(12)]

    assert waits[:11] == [0] * 11
    assert 0 < waits[11] <= 100  # 10 в секунду — одно в 100 мс


def test_a_sender_keeping_exactly_the_rate_is_never_refused(backend: str) -> None:
    # 300/с — интервал 3,33 мс; округлённый вверх до 4 мс эмулятор пускал бы лишь 250/с
    with override_settings(TELEGRAM_RATE_OVERALL=300.0):
        start = time.time()
        waits = [ratelimit.acquire(5000 + i, received_at=start + i / 300) for i in range(600)]

    assert waits == [0] * 600


def test_a_refused_request_does_not_use_up_the_budget(backend: str) -> None:
    for _ in range(3):
        ratelimit.acquire(202)
    first_refusal = ratelimit.acquire(202)
    for _ in range(10):
        ratelimit.acquire(202)

    assert ratelimit.acquire(202) <= first_refusal


def test_only_message_methods_count() -> None:
    assert ratelimit.is_limited("sendMessage")
    assert ratelimit.is_limited("sendMediaGroup")
    assert ratelimit.is_limited("editMessageText")
    assert ratelimit.is_limited("copyMessage")
    assert not ratelimit.is_limited("sendChatAction")
    assert not ratelimit.is_limited("getFile")
    assert not ratelimit.is_limited("answerCallbackQuery")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning")
@pytest.mark.emulator_violations_expected
def test_the_budget_is_shared_by_every_process(strict_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()
    # Этот процесс (как второй веб-процесс) исчерпал всплеск чата
    with override_settings(**STRICT):
        assert [ratelimit.acquire(chat_id) for _ in range(3)] == [0, 0, 0]

    async def scenario(bot: Bot) -> Any:
        with pytest.raises(RetryAfter) as caught:
            await bot.send_message(chat_id, "первое же сообщение с сервера")
        return caught.value

    assert strict_sandbox.run(scenario).retry_after == 1
