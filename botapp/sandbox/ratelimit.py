"""Лимиты Telegram на отправку в эмуляторе: GCRA, общий для всех веб-процессов (Redis + Lua).

Своя реализация, не лимитер отправителя бота: эмулятор проверяет бота, а не сам себя.
Без REDIS_URL (локальный запуск, один веб-процесс) — то же в памяти процесса.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings

logger = logging.getLogger(__name__)

# Несколько сообщений подряд Telegram пропускает: ответ + меню уходят сразу
BURST = 3
# Лимиты считаются по приходу, а момент прихода сдвигает сеть и планировщик. Допуск корзины — не меньше
# секунды: «30 сообщений в секунду» Telegram считает с точностью до секунды, а задержка прихода
# сжимает отправки честного лимитера в пачку размером как раз «задержка × темп». Допуск τ прощает любую
# задержку короче τ при любом темпе; 50, 150, 250 мс не хватало: на занятой ВМ CI эмулятор или клиент
# замирают дольше (3 × 429 от честного лимитера на 500 чатах). Ровный темп выше лимита и залп без
# лимитера 429 получают всё равно — сотнями
ARRIVAL_JITTER_MS = 1000.0

# KEYS — корзины; ARGV — пары (интервал мс, допуск мс; дробные). Время — часы Redis, одни на все процессы.
# Ответ: 0 — можно (все корзины сдвинуты), иначе мс до разрешения (ничего не сдвинуто).
_GCRA_LUA = """
local now
if #ARGV > 2 * #KEYS then
  now = tonumber(ARGV[#ARGV])
else
  local t = redis.call('TIME')
  now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
end
-- Часы эмулятора не идут назад: запрос, обработанный позже соседа с более поздней отметкой
-- прихода (нити и пул соединений БД меняют порядок), считается пришедшим вместе с ним
local clock = tonumber(redis.call('GET', KEYS[1] .. ':clock')) or now
if clock > now then now = clock end
redis.call('SET', KEYS[1] .. ':clock', string.format('%.3f', now), 'PX', 60000)
local wait = 0
local next_tat = {}
for i, key in ipairs(KEYS) do
  local interval = tonumber(ARGV[2 * i - 1])
  local tolerance = tonumber(ARGV[2 * i])
  local tat = tonumber(redis.call('GET', key)) or now
  if tat < now then tat = now end
  local w = tat - tolerance - now
  if w > wait then wait = w end
  next_tat[i] = tat + interval
end
if wait > 0 then return math.ceil(wait) end
for i, key in ipairs(KEYS) do
  -- %.3f: число Lua в строку Redis переводит через %.14g и теряет доли миллисекунды
  redis.call('SET', key, string.format('%.3f', next_tat[i]), 'PX', math.ceil(next_tat[i] - now) + 1000)
end
return 0
"""

# Методы, создающие или меняющие сообщения (sendChatAction сообщением не считается)
_LIMITED_PREFIXES = ("send", "copyMessage", "forwardMessage", "editMessage")


def is_limited(method: str) -> bool:
    return method.startswith(_LIMITED_PREFIXES) and method != "sendChatAction"


@dataclass(frozen=True)
class Bucket:
    name: str
    # Дробные миллисекунды: ceil(1000/300) = 4 мс — это 250/с, и лимитер, честно держащий 300/с,
    # получал бы 429 от эмулятора
    interval_ms: float
    tolerance_ms: float

    @property
    def key(self) -> str:
        # Параметры в имени ключа: серверы с разными лимитами не делят состояние
        return f"{self.name}:{self.interval_ms:.3f}:{self.tolerance_ms:.3f}"


def buckets_for(chat_id: int | str | None) -> list[Bucket]:
    """Общая корзина + корзина чата: личный — сообщений в секунду, группа (id < 0) — в минуту."""
    overall = 1000 / settings.TELEGRAM_RATE_OVERALL
    result = [Bucket("overall", overall, max(overall * (BURST - 1), ARRIVAL_JITTER_MS))]
    if chat_id is None or str(chat_id) == "":
        return result
    chat = str(chat_id)
    if chat.startswith("-"):
        interval = 60_000 / settings.TELEGRAM_RATE_PER_GROUP
    else:
        interval = 1000 / settings.TELEGRAM_RATE_PER_CHAT
    # Тот же допуск к задержке прихода: при 1/с в чат он и так шире (2 с), а при поднятых в тестах
    # лимитах (10/с) без него задержка в 200 мс давала бы честному лимитеру 429
    result.append(Bucket(f"chat:{chat}", interval, max(interval * (BURST - 1), ARRIVAL_JITTER_MS)))
    return result


class _LocalGcra:
    def __init__(self) -> None:
        self.tats: dict[str, float] = {}
        self.clock = 0.0  # часы не идут назад — как в Lua-версии
        self.lock = threading.Lock()

    def acquire(self, buckets: list[Bucket], received_at: float | None = None) -> float:
        with self.lock:
            now = max((time.time() if received_at is None else received_at) * 1000, self.clock)
            self.clock = now
            wait = 0.0
            updated: dict[str, float] = {}
            for bucket in buckets:
                tat = max(self.tats.get(bucket.key, now), now)
                wait = max(wait, tat - bucket.tolerance_ms - now)
                updated[bucket.key] = tat + bucket.interval_ms
            if wait > 0:
                return wait
            self.tats.update(updated)
            return 0

    def reset(self) -> None:
        with self.lock:
            self.tats.clear()
            self.clock = 0.0


_local = _LocalGcra()
_redis_lock = threading.Lock()
_redis: Any = None
_script: Any = None


def _prefix() -> str:
    return f"{settings.REDIS_KEY_PREFIX}sandbox:rate:"


def _client() -> tuple[Any, Any]:
    global _redis, _script
    with _redis_lock:
        if _redis is None:
            import redis

            _redis = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2)
            _script = _redis.register_script(_GCRA_LUA)
    return _redis, _script


def acquire(chat_id: int | str | None, *, received_at: float | None = None) -> float:
    """0 — отправку можно принять, иначе миллисекунды до того, как станет можно.

    received_at (time.time() прихода запроса) — «сейчас» для корзин, как у Telegram.
    """
    buckets = buckets_for(chat_id)
    if not settings.REDIS_URL:
        return _local.acquire(buckets, received_at)
    client, script = _client()
    args: list[float] = []
    for bucket in buckets:
        args += [bucket.interval_ms, bucket.tolerance_ms]
    if received_at is not None:
        args.append(round(received_at * 1000, 3))
    try:
        return float(script(keys=[_prefix() + b.key for b in buckets], args=args, client=client))
    except Exception:
        # Эмулятор без Redis не должен ронять бота: лимит просто не проверяется
        logger.warning("sandbox rate limiter: Redis unavailable, request allowed", exc_info=True)
        return 0


def retry_after_seconds(wait_ms: float) -> int:
    """retry_after у Telegram — целые секунды, не меньше одной."""
    return max(1, math.ceil(wait_ms / 1000))


def reset() -> None:
    """Забыть все корзины (между тестами); ключи — только с префиксом песочницы, без FLUSHDB."""
    _local.reset()
    if not settings.REDIS_URL:
        return
    client, _ = _client()
    keys = list(client.scan_iter(match=_prefix() + "*", count=500))
    if keys:
        client.delete(*keys)
