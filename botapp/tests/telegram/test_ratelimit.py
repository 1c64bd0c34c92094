"""Лимитер общий для процессов: несколько ОС-процессов вместе не превышают лимиты Telegram."""

from __future__ import annotations

import asyncio
import itertools
import json
import socket
import subprocess
import sys
import time
from typing import Any

import pytest
from django.conf import settings
from django.test import override_settings

from botapp.telegram.ratelimit import SendLimiter, buckets_for
from botapp.tests.support.processes import ROOT, django_env

pytestmark = pytest.mark.django_db  # django_env читает параметры тестовой БД

# Дочерний процесс: стартует по общему времени, берёт N разрешений, печатает моменты
CHILD = """
import asyncio, json, sys, time
import django
django.setup()
from botapp.telegram.ratelimit import SendLimiter

async def main(chat, count, start_at):
    limiter = SendLimiter()
    while time.time() < start_at:
        await asyncio.sleep(0.001)
    stamps = []
    for _ in range(count):
        while (wait := await limiter.acquire(chat)) > 0:
            await asyncio.sleep(wait)
        stamps.append(time.time())
    await limiter.aclose()
    print(json.dumps(stamps))

asyncio.run(main(int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3])))
"""


def _run_processes(chats: list[int], per_process: int, rates: dict[str, str]) -> list[float]:
    env = django_env(**rates, REDIS_KEY_PREFIX=f"{settings.REDIS_KEY_PREFIX}rl{time.monotonic_ns()}:")
    start_at = time.time() + 3
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(chat), str(per_process), str(start_at)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        for chat in chats
    ]
    stamps: list[float] = []
    for proc in procs:
        out, _ = proc.communicate(timeout=120)
        assert proc.returncode == 0
        stamps += json.loads(out.strip().splitlines()[-1])
    return sorted(stamps)


def _max_in_window(stamps: list[float], window: float) -> int:
    best, left = 0, 0
    for right, stamp in enumerate(stamps):
        while stamp - stamps[left] >= window:
            left += 1
        best = max(best, right - left + 1)
    return best


@pytest.mark.slow
def test_four_processes_sending_to_one_chat_respect_the_per_chat_rate() -> None:
    stamps = _run_processes([777] * 4, 10, {"TELEGRAM_RATE_OVERALL": "300", "TELEGRAM_RATE_PER_CHAT": "10"})
    assert len(stamps) == 40
    # 10 в секунду плюс короткий всплеск из 3
    assert _max_in_window(stamps, 1.0) <= 10 + 3
    assert stamps[-1] - stamps[0] >= 3.0


@pytest.mark.slow
def test_four_processes_sending_to_many_chats_respect_the_overall_rate() -> None:
    rates = {"TELEGRAM_RATE_OVERALL": "100", "TELEGRAM_RATE_PER_CHAT": "1000"}
    stamps = _run_processes([1001, 1002, 1003, 1004], 60, rates)
    assert len(stamps) == 240
    assert _max_in_window(stamps, 1.0) <= 100
    assert stamps[-1] - stamps[0] >= 2.0


def test_groups_are_limited_per_minute() -> None:
    with override_settings(TELEGRAM_RATE_PER_GROUP=20):
        group = buckets_for(-100123)[1]
        private = buckets_for(42)[1]
    assert group.interval_ms >= 3000
    assert private.tolerance_ms > 0
    assert group.tolerance_ms == group.interval_ms


def test_the_embedded_limiter_works_without_redis() -> None:
    async def burst() -> list[float]:
        limiter = SendLimiter()
        return [await limiter.acquire(5) for _ in range(5)]

    # Общий лимит без всплеска: здесь он так высок, что не мешает проверить всплеск чата
    with override_settings(REDIS_URL="", TELEGRAM_RATE_PER_CHAT=1, TELEGRAM_RATE_OVERALL=1_000_000):
        waits = asyncio.run(burst())
    # Короткий всплеск из двух, затем — ждать
    assert waits[:2] == [0.0, 0.0]
    assert all(w > 0 for w in waits[2:])


def test_a_silent_redis_costs_one_timeout_then_the_process_limit_is_used_for_a_while() -> None:
    """Redis принимает соединение и молчит (завис, сеть): одна отправка ждёт таймаут сокета, следующие
    несколько секунд Redis не спрашиваем — иначе каждая ждала бы свои 2 с."""
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(64)
    port = silent.getsockname()[1]

    async def sends() -> list[float]:
        limiter = SendLimiter()
        took = []
        try:
            for i in range(5):
                started = time.monotonic()
                reserved, _ = await limiter.reserve(2000 + i, max_wait=1.0)
                assert reserved
                took.append(time.monotonic() - started)
        finally:
            await limiter.aclose()
        return took

    try:
        with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0", TELEGRAM_RATE_OVERALL=1000):
            took = asyncio.run(sends())
    finally:
        silent.close()
    assert took[0] >= 1.5  # первая — таймаут сокета (2 с)
    assert max(took[1:]) < 0.1


@pytest.fixture(params=["redis", "embedded"])
def limiter_settings(request: pytest.FixtureRequest) -> Any:
    redis_url = settings.REDIS_URL if request.param == "redis" else ""
    prefix = f"{settings.REDIS_KEY_PREFIX}rsv{time.monotonic_ns()}:"
    # 10/с в общем лимите (слот ≈ 103 мс), чат не мешает
    with override_settings(
        REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix, TELEGRAM_RATE_OVERALL=10, TELEGRAM_RATE_PER_CHAT=1000
    ):
        yield


def test_reservations_queue_up_one_slot_apart(limiter_settings: None) -> None:
    """Пять отправителей сразу: каждому — свой слот, через ровный промежуток, без переспросов."""

    async def five() -> list[tuple[bool, float]]:
        limiter = SendLimiter()
        try:
            return [await limiter.reserve(1000 + i, max_wait=5.0) for i in range(5)]
        finally:
            await limiter.aclose()

    interval = buckets_for(None)[0].interval_ms / 1000
    slots = asyncio.run(five())
    assert all(reserved for reserved, _ in slots)
    waits = [wait for _, wait in slots]
    assert waits[0] == 0.0
    for before, after in itertools.pairwise(waits):
        assert after - before == pytest.approx(interval, abs=0.02)


def test_a_slot_beyond_max_wait_is_not_taken(limiter_settings: None) -> None:
    """Отказ ничего не занимает: следующий спросивший получит тот же ближайший слот."""

    async def asks() -> list[tuple[bool, float]]:
        limiter = SendLimiter()
        try:
            first = await limiter.reserve(7, max_wait=0.0)
            refused = [await limiter.reserve(7, max_wait=0.0) for _ in range(3)]
            taken = await limiter.reserve(7, max_wait=5.0)
            return [first, *refused, taken]
        finally:
            await limiter.aclose()

    interval = buckets_for(None)[0].interval_ms / 1000
    first, *refused, taken = asyncio.run(asks())
    assert first == (True, 0.0)
    assert [reserved for reserved, _ in refused] == [False, False, False]
    assert taken[0] is True
    # Слот не сдвинулся из-за трёх отказов: ждать меньше одного промежутка
    assert 0 < taken[1] <= interval


def test_a_sender_that_overslept_its_slot_queues_again(
    limiter_settings: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Проспал слот (машина занята): не отправляет вместе со следующими, а занимает новый слот."""
    from botapp.telegram import ratelimit

    real_sleep = asyncio.sleep
    stalls = [0.2]  # первый сон до слота затягивается на 200 мс, как на загруженной машине

    async def stalled_sleep(seconds: float) -> None:
        # Только сон до слота (~0,1 с), а не короткие паузы библиотек
        stall = stalls.pop() if stalls and seconds > 0.05 else 0.0
        await real_sleep(seconds + stall)

    monkeypatch.setattr(ratelimit.asyncio, "sleep", stalled_sleep)  # type: ignore[attr-defined]
    reservations: list[float] = []

    async def run() -> float:
        limiter = SendLimiter()
        original = limiter.reserve

        async def counted(*args: Any, **kwargs: Any) -> tuple[bool, float]:
            reserved, wait = await original(*args, **kwargs)
            reservations.append(wait)
            return reserved, wait

        limiter.reserve = counted  # type: ignore[method-assign]
        try:
            assert await limiter.wait_turn(1, max_wait=5.0) == 0.0  # слот сразу
            return await limiter.wait_turn(2, max_wait=5.0)
        finally:
            await limiter.aclose()

    assert asyncio.run(run()) == 0.0
    # Первый, второй (проспан) и третий слот: опоздавший встал в очередь заново
    assert len(reservations) == 3
    assert reservations[0] == 0.0
    assert reservations[1] > 0
