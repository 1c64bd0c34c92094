"""Отправитель с общим лимитером против эмулятора с теми же лимитами (×10 к умолчаниям)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings
from telegram import Bot
from telegram.error import RetryAfter

from botapp.models import TelegramUser
from botapp.sandbox import services
from botapp.telegram.sender import RecipientBlocked, SendDeferred, SharedRateLimiter, remember_blocked
from botapp.tests.sandbox.conftest import LiveSandbox, _live
from botapp.tests.support.marks import marked_blocked
from botapp.tests.support.parallel import run_in_processes
from botapp.tests.telegram.bursts import bot_for, burst

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

RATES = {"TELEGRAM_RATE_OVERALL": 300.0, "TELEGRAM_RATE_PER_CHAT": 10.0, "TELEGRAM_RATE_PER_GROUP": 200.0}


def _emulator(blocker: Any, logs_dir: Path, name: str, rates: dict[str, float]) -> Iterator[LiveSandbox]:
    """Эмулятор с заданными лимитами — теми же числами, что у лимитера в тесте."""
    with blocker.unblock():
        yield from _live(logs_dir, name, **{k: str(v) for k, v in rates.items()})


def _limiter_rates(rates: dict[str, float]) -> Iterator[None]:
    """Лимитер теста с теми же лимитами и своим префиксом Redis (чистые корзины)."""
    prefix = f"{settings.REDIS_KEY_PREFIX}snd{time.monotonic_ns()}:"
    with override_settings(REDIS_KEY_PREFIX=prefix, **rates):
        yield


@pytest.fixture(scope="module")
def fast_sandbox(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path) -> Iterator[LiveSandbox]:
    """Лимиты в 10 раз выше умолчаний Telegram."""
    yield from _emulator(django_db_blocker, logs_dir, "sandbox-sender", RATES)


@pytest.fixture
def same_rates() -> Iterator[None]:
    yield from _limiter_rates(RATES)


def _bot(sandbox: LiveSandbox, limiter: SharedRateLimiter | None) -> Bot:
    return bot_for(sandbox.base, limiter)


def _throttled() -> int:
    return sum(1 for call in services.sandbox_calls(method="sendMessage") if call.status == 429)


def test_the_limiter_never_draws_a_429_in_one_chat(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    chats = [7_100_000_001] * 100
    errors = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=60)), chats))
    assert errors == [None] * len(chats)
    assert _throttled() == 0
    assert len(services.sandbox_calls(method="sendMessage")) == len(chats)


# Много чатов — из четырёх ОС-процессов с общим лимитером в Redis, как веб и воркеры (почему процессы —
# в bursts.py)
PROCESSES = 4


def _burst_from_processes(sandbox: LiveSandbox, chats: list[int], *, limited: bool) -> dict[str, Any]:
    share = len(chats) // PROCESSES
    common = {"base": sandbox.base, "limited": limited, "processes": PROCESSES}
    common["ready_key"] = f"{settings.REDIS_KEY_PREFIX}burst:{time.monotonic_ns()}"
    outcomes = run_in_processes(
        "botapp.tests.telegram.bursts:send_burst",
        [{**common, "chats": chats[i * share : (i + 1) * share]} for i in range(PROCESSES)],
        env={name: str(value) for name, value in RATES.items()},
    )
    return {
        "sent": sum(o["sent"] for o in outcomes),
        "retry_after": sum(o["retry_after"] for o in outcomes),
        "other": [error for o in outcomes for error in o["other"]],
    }


def test_the_limiter_never_draws_a_429_across_many_chats(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    chats = list(range(7_200_000_000, 7_200_000_500))
    outcome = _burst_from_processes(fast_sandbox, chats, limited=True)
    assert outcome == {"sent": len(chats), "retry_after": 0, "other": []}
    assert _throttled() == 0
    assert len(services.sandbox_calls(method="sendMessage")) == len(chats)


@pytest.mark.emulator_violations_expected  # контрольный залп без лимитера обязан получить 429
def test_the_same_burst_to_many_chats_without_the_limiter_is_throttled(
    fast_sandbox: LiveSandbox, same_rates: None
) -> None:
    chats = list(range(7_300_000_000, 7_300_000_500))
    outcome = _burst_from_processes(fast_sandbox, chats, limited=False)
    assert outcome["retry_after"] > 0
    assert outcome["other"] == []
    assert _throttled() == outcome["retry_after"]


@pytest.mark.emulator_violations_expected  # контрольный залп без лимитера обязан получить 429
def test_the_same_burst_without_the_limiter_is_throttled(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    errors = asyncio.run(burst(_bot(fast_sandbox, None), [7_100_000_002] * 100))
    assert any(isinstance(error, RetryAfter) for error in errors)
    assert _throttled() > 0


def test_an_injected_429_is_retried_after_retry_after(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    chat = 7_100_000_003
    services.sandbox_inject_failure(method="sendMessage", failure="flood", chat_id=chat, retry_after=1)
    started = time.monotonic()
    errors = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=5)), [chat]))
    assert errors == [None]
    assert time.monotonic() - started >= 1.0
    assert [(c.status, c.injected) for c in services.sandbox_calls(method="sendMessage")] == [
        (429, True),
        (200, False),
    ]


def test_a_worker_defers_even_a_short_retry_after_instead_of_sleeping(
    fast_sandbox: LiveSandbox, same_rates: None
) -> None:
    """Воркер (sleep_on_retry=False) не спит и секунду: задача переназначается на retry_after."""
    chat = 7_100_000_007
    services.sandbox_inject_failure(method="sendMessage", failure="flood", chat_id=chat, retry_after=1)
    limiter = SharedRateLimiter(max_wait=1.2, sleep_on_retry=False)
    started = time.monotonic()
    [error] = asyncio.run(burst(_bot(fast_sandbox, limiter), [chat]))
    assert isinstance(error, SendDeferred)
    assert error.retry_after == 1
    assert time.monotonic() - started < 1.0
    assert len(services.sandbox_calls(method="sendMessage", chat_id=chat)) == 1


def test_a_long_retry_after_defers_instead_of_sleeping(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    chat = 7_100_000_004
    services.sandbox_inject_failure(method="sendMessage", failure="flood", chat_id=chat, retry_after=30)
    [error] = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=2)), [chat]))
    assert isinstance(error, SendDeferred)
    assert error.retry_after == 30


def test_403_marks_the_user_blocked(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    chat = 7_100_000_005
    TelegramUser.objects.create(telegram_id=chat, first_name="Ann")
    services.sandbox_inject_failure(method="sendMessage", failure="blocked", chat_id=chat)
    [error] = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=2)), [chat]))
    assert isinstance(error, RecipientBlocked)
    assert TelegramUser.objects.get(telegram_id=chat).is_blocked


def test_after_a_403_no_process_sends_to_that_chat_again(fast_sandbox: LiveSandbox, same_rates: None) -> None:
    """Отметка «заблокировал» — в Redis: другой отправитель (как воркер в другом процессе) не шлёт вовсе."""
    chat, other = 7_100_000_008, 7_100_000_009
    TelegramUser.objects.create(telegram_id=chat, first_name="Ann")
    services.sandbox_inject_failure(method="sendMessage", failure="blocked", chat_id=chat)
    [first] = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=2)), [chat]))
    assert isinstance(first, RecipientBlocked)

    errors = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=2)), [chat, chat, other]))

    assert [type(e) for e in errors] == [RecipientBlocked, RecipientBlocked, type(None)]
    assert [c.status for c in services.sandbox_calls(method="sendMessage", chat_id=chat)] == [403]
    assert len(services.sandbox_calls(method="sendMessage", chat_id=other)) == 1


def test_a_stale_blocked_mark_is_dropped_and_a_returned_user_gets_messages(
    fast_sandbox: LiveSandbox, same_rates: None
) -> None:
    """Отметка — кэш is_blocked: в БД не заблокирован — отметка снимается и сообщение уходит."""
    stale, still, returned = 7_100_000_010, 7_100_000_011, 7_100_000_013
    TelegramUser.objects.create(telegram_id=stale, first_name="Bo")  # вернулся, «member» потерялся
    TelegramUser.objects.create(telegram_id=still, first_name="Cy", is_blocked=True)
    TelegramUser.objects.create(telegram_id=returned, first_name="Di", is_blocked=True)

    async def marked_then_sent() -> tuple[list[BaseException | None], bool]:
        bot = _bot(fast_sandbox, SharedRateLimiter(max_wait=2))
        for chat in (stale, still, returned):
            await remember_blocked(bot, chat, blocked=True)
        results = await burst(bot, [stale, still])
        return results, await marked_blocked(stale)

    async def member_again() -> list[BaseException | None]:
        bot = _bot(fast_sandbox, SharedRateLimiter(max_wait=2))
        await remember_blocked(bot, returned, blocked=False)
        return await burst(bot, [returned])

    results, stale_still_marked = asyncio.run(marked_then_sent())
    # my_chat_member «member»: флаг в БД и отметка снимаются вместе
    TelegramUser.objects.filter(telegram_id=returned).update(is_blocked=False)
    results += asyncio.run(member_again())

    assert [type(r) for r in results] == [type(None), RecipientBlocked, type(None)]
    assert not stale_still_marked
    chats = (stale, still, returned)
    sent = {chat: len(services.sandbox_calls(method="sendMessage", chat_id=chat)) for chat in chats}
    assert sent == {stale: 1, still: 0, returned: 1}


def test_a_migrated_group_gets_the_message_in_the_new_chat(
    fast_sandbox: LiveSandbox, same_rates: None
) -> None:
    old, new = -4_100_000_006, -1_004_100_000_006
    services.sandbox_inject_failure(
        method="sendMessage", failure="migrated", chat_id=old, migrate_to_chat_id=new
    )
    errors = asyncio.run(burst(_bot(fast_sandbox, SharedRateLimiter(max_wait=2)), [old]))
    assert errors == [None]
    assert [c.chat_id for c in services.sandbox_calls(method="sendMessage") if c.status == 200] == [new]


def test_a_redis_outage_while_marking_a_chat_blocked_is_only_logged(caplog: pytest.LogCaptureFixture) -> None:
    """Правда о блокировке — is_blocked в БД: отметка в Redis лишь бережёт вызовы, её сбой не ошибка."""
    limiter = SharedRateLimiter(max_wait=1)
    with override_settings(REDIS_URL="redis://127.0.0.1:1/0"):
        asyncio.run(limiter.remember_blocked(7_100_000_012, blocked=True))
    assert "could not set the blocked mark" in caplog.text
