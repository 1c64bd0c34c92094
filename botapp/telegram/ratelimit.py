"""Общий для всех процессов лимитер отправки в Telegram (GCRA в Redis).

Лимиты Telegram действуют на бота целиком, а процессов у нас много (веб, воркеры),
поэтому состояние — в Redis, а решение — одним Lua-скриптом (атомарно).
Без Redis (локальный запуск) — то же в памяти процесса.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

# Запас: ровный темп чуть ниже лимита (30/с → 29/с). Общий лимит — без всплеска: Telegram
# считает по приходу, и запас в 3 % уходит на разброс сети, а не на всплеск. В чате — всплеск
# из 2 (Telegram позволяет 3): ответ + меню уходят сразу
SAFETY = 1.03
OVERALL_BURST = 1
BURST = 2

_GCRA_LUA = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local wait = 0
local tats = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key) or now)
  if tat < now then tat = now end
  local allow_at = tat - tolerance
  if allow_at > now and allow_at - now > wait then wait = allow_at - now end
  tats[i] = tat + interval
end
if wait > 0 then return tostring(wait) end
for i, key in ipairs(KEYS) do
  redis.call('SET', key, tostring(tats[i]), 'PX', math.ceil(tats[i] - now + 1000))
end
return '0'
"""


@dataclass(frozen=True)
class Bucket:
    key: str
    interval_ms: float  # промежуток между отправками при ровном темпе
    tolerance_ms: float  # сколько можно «забежать вперёд» (всплеск)


def buckets_for(chat_id: int | str | None) -> list[Bucket]:
    """Общий лимит + лимит чата (личный — в секунду, группа — в минуту)."""
    overall = 1000.0 * SAFETY / settings.TELEGRAM_RATE_OVERALL
    result = [Bucket("overall", overall, overall * (OVERALL_BURST - 1))]
    if chat_id is None:
        return result
    chat = str(chat_id)
    if chat.startswith("-"):
        per_group = 60_000.0 * SAFETY / settings.TELEGRAM_RATE_PER_GROUP
        result.append(Bucket(f"chat:{chat}", per_group, per_group * (BURST - 1)))
    else:
        per_chat = 1000.0 * SAFETY / settings.TELEGRAM_RATE_PER_CHAT
        # Короткий всплеск в личном чате: ответ + меню уходят сразу
        result.append(Bucket(f"chat:{chat}", per_chat, per_chat * (BURST - 1)))
    return result


# Рассылкам — не весь общий лимит: ответы бота живым пользователям не должны стоять за ними в очереди
BROADCAST_SHARE = 0.7


def broadcast_bucket() -> Bucket:
    """Дополнительный лимит массовых отправок (доля общего, без всплеска)."""
    return Bucket("broadcast", 1000.0 * SAFETY / (settings.TELEGRAM_RATE_OVERALL * BROADCAST_SHARE), 0.0)


class _LocalGcra:
    """Замена Redis для одного процесса (встроенный режим)."""

    def __init__(self) -> None:
        self.tats: dict[str, float] = {}

    def acquire(self, buckets: list[Bucket]) -> float:
        now = time.monotonic() * 1000
        wait = 0.0
        new: dict[str, float] = {}
        for bucket in buckets:
            tat = max(self.tats.get(bucket.key, now), now)
            wait = max(wait, tat - bucket.tolerance_ms - now)
            new[bucket.key] = tat + bucket.interval_ms
        if wait > 0:
            return wait / 1000
        self.tats.update(new)
        return 0.0


class SendLimiter:
    """acquire() → 0, если можно слать сейчас, иначе сколько секунд подождать."""

    def __init__(self) -> None:
        self._local = _LocalGcra()
        self._redis: Any = None
        self._script: Any = None

    def _client(self) -> Any:
        if self._redis is None:
            import redis.asyncio as aioredis

            # Блокирующий пул: сотни одновременных отправок ждут соединение, а не падают
            pool = aioredis.BlockingConnectionPool.from_url(
                settings.REDIS_URL, max_connections=32, timeout=10, socket_timeout=2, socket_connect_timeout=2
            )
            self._redis = aioredis.Redis(connection_pool=pool)
            self._script = self._redis.register_script(_GCRA_LUA)
        return self._redis

    async def acquire(self, chat_id: int | str | None, extra: list[Bucket] | None = None) -> float:
        buckets = buckets_for(chat_id) + (extra or [])
        if not settings.REDIS_URL:
            return self._local.acquire(buckets)
        self._client()
        prefix = f"{settings.REDIS_KEY_PREFIX}tg-rate:"
        args: list[float] = []
        for bucket in buckets:
            args += [bucket.interval_ms, bucket.tolerance_ms]
        wait_ms = float(await self._script(keys=[prefix + b.key for b in buckets], args=args))
        return wait_ms / 1000

    async def wait_turn(
        self, chat_id: int | str | None, max_wait: float, extra: list[Bucket] | None = None
    ) -> float:
        """Ждать очереди не дольше max_wait; вернуть остаток ожидания (0 — отправлено можно)."""
        deadline = time.monotonic() + max_wait
        while True:
            wait = await self.acquire(chat_id, extra)
            if wait <= 0:
                return 0.0
            if time.monotonic() + wait > deadline:
                return wait
            await asyncio.sleep(wait)

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
