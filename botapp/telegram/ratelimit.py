"""Общий для всех процессов лимитер отправки в Telegram (GCRA в Redis).

Лимиты Telegram действуют на бота целиком, а процессов у нас много (веб, воркеры),
поэтому состояние — в Redis, а решение — одним Lua-скриптом (атомарно).
Без Redis (локальный запуск) — то же в памяти процесса; так же и пока Redis недоступен.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

# Запас: ровный темп чуть ниже лимита (30/с → 29/с). Общий лимит — без всплеска: Telegram
# считает по приходу, и запас в 3 % уходит на разброс сети, а не на всплеск. В чате — всплеск
# из 2 (Telegram позволяет 3): ответ + меню уходят сразу
SAFETY = 1.03
OVERALL_BURST = 1
BURST = 2
# Опоздание к своему слоту, после которого слот не используется (см. SendLimiter.wait_turn).
# Меньше запаса SAFETY − 1 = 30 мс: в любом окне 1 с тогда не больше отправок, чем лимит, —
# опоздавший не попадает в окно вместе со всеми слотами после себя
LATE_S = 0.02

# KEYS[1] — отметка «заблокировал бота» этого чата, KEYS[2..] — корзины. ARGV[1] — max_wait (мс),
# ARGV[2] — 1, если отметку проверять; дальше пары (интервал, допуск) корзин.
# Ответ: {-1} — чат отмечен (слот не занят), {1, wait} — слот занят, {0, wait} — ждать дольше max_wait
_GCRA_LUA = """
if ARGV[2] == '1' and redis.call('EXISTS', KEYS[1]) == 1 then return {-1, '0'} end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local max_wait = tonumber(ARGV[1])
local wait = 0
for i = 2, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  local allow_at = tat - tonumber(ARGV[2 * i])
  if allow_at - now > wait then wait = allow_at - now end
end
if wait > max_wait then return {0, tostring(wait)} end
local send_at = now + wait
for i = 2, #KEYS do
  local tat = tonumber(redis.call('GET', KEYS[i]) or now)
  if tat < send_at then tat = send_at end
  tat = tat + tonumber(ARGV[2 * i - 1])
  redis.call('SET', KEYS[i], tostring(tat), 'PX', math.ceil(tat - now + 1000))
end
return {1, tostring(wait)}
"""


# Отметка «пользователь заблокировал бота» в Redis: её видят все процессы, а проверяет тот же вызов Lua,
# что занимает слот, — без лишнего похода. Это лишь кэш флага is_blocked в БД (см. sender): снимают её
# my_chat_member «member» и отправитель, нашедший в БД, что пользователь вернулся; живёт сутки.
# Без Redis отметок нет: у каждого процесса была бы своя, и снять её в чужом процессе нельзя
BLOCKED_TTL_S = 24 * 3600
# Предупреждение «Redis недоступен, лимит — в памяти процесса» — не чаще раза в столько секунд
REDIS_DOWN_LOG_S = 60.0
# После сбоя Redis столько секунд его не спрашиваем: зависший Redis (не отказ, а молчание) стоил бы
# каждой отправке таймаута сокета (2 с)
REDIS_DOWN_PAUSE_S = 5.0


class MarkedBlocked(Exception):
    """Чат отмечен как заблокировавший бота: вызов не отправлен, слот не занят."""


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

    def reserve(self, buckets: list[Bucket], max_wait_ms: float) -> tuple[bool, float]:
        now = time.monotonic() * 1000
        wait = max([0.0] + [self.tats.get(b.key, now) - b.tolerance_ms - now for b in buckets])
        if wait > max_wait_ms:
            return False, wait
        send_at = now + wait
        for bucket in buckets:
            self.tats[bucket.key] = max(self.tats.get(bucket.key, now), send_at) + bucket.interval_ms
        return True, wait


class SendLimiter:
    """reserve()/wait_turn() — занять слот очереди; acquire() — только спросить «можно сейчас?»."""

    def __init__(self) -> None:
        self._local = _LocalGcra()
        self._redis: Any = None
        self._script: Any = None
        self._redis_down_logged = -REDIS_DOWN_LOG_S
        self._redis_down_until = 0.0

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

    async def reserve(
        self,
        chat_id: int | str | None,
        max_wait: float,
        extra: list[Bucket] | None = None,
        *,
        check_blocked: bool = False,
    ) -> tuple[bool, float]:
        """Занять ближайший слот, если до него не дольше max_wait: (занят?, через сколько секунд).

        Слот — как место в очереди: отправитель спит до него и шлёт, не переспрашивая. Опрос
        «можно? нет — подожду и спрошу снова» терял темп: опоздавший на загруженной машине
        отправитель сдвигал расписание, и общий лимит недобирал несколько процентов.
        check_blocked и чат отмечен заблокировавшим бота — MarkedBlocked, слот не занят.
        """
        buckets = buckets_for(chat_id) + (extra or [])
        if not settings.REDIS_URL or time.monotonic() < self._redis_down_until:
            reserved, wait_ms = self._local.reserve(buckets, max_wait * 1000)
            return reserved, wait_ms / 1000
        self._client()
        prefix = f"{settings.REDIS_KEY_PREFIX}tg-rate:"
        args: list[float] = [max_wait * 1000, int(check_blocked)]
        for bucket in buckets:
            args += [bucket.interval_ms, bucket.tolerance_ms]
        keys = [self._blocked_key(chat_id)] + [prefix + b.key for b in buckets]
        try:
            reserved, wait_ms = await self._script(keys=keys, args=args)
        except RedisError:
            # Redis упал или перезапускается: лимит этого процесса вместо общего. Ответ пользователю
            # важнее точного темпа, а 429 от Telegram sender и так переждёт; отметки «заблокировал»
            # без Redis не проверить — правда о блокировке в БД, и 403 её обновит
            self._redis_down_until = time.monotonic() + REDIS_DOWN_PAUSE_S
            self._warn_redis_down()
            reserved, wait_ms = self._local.reserve(buckets, max_wait * 1000)
            return reserved, wait_ms / 1000
        if int(reserved) < 0:
            raise MarkedBlocked(str(chat_id))
        return bool(reserved), float(wait_ms) / 1000

    def _warn_redis_down(self) -> None:
        now = time.monotonic()
        if now - self._redis_down_logged >= REDIS_DOWN_LOG_S:
            self._redis_down_logged = now
            logger.warning("Redis unavailable: Telegram send limits are per process", exc_info=True)

    @staticmethod
    def _blocked_key(chat_id: int | str | None) -> str:
        return f"{settings.REDIS_KEY_PREFIX}tg-blocked:{'' if chat_id is None else chat_id}"

    async def set_blocked(self, chat_id: int, blocked: bool) -> None:
        """Отметить чат заблокировавшим бота (или снять отметку) для всех процессов."""
        if not settings.REDIS_URL:
            return
        client = self._client()
        if blocked:
            await client.set(self._blocked_key(chat_id), 1, ex=BLOCKED_TTL_S)
        else:
            await client.delete(self._blocked_key(chat_id))

    async def acquire(self, chat_id: int | str | None, extra: list[Bucket] | None = None) -> float:
        """Слать сейчас (0) или через сколько секунд спросить снова; ничего не занимает впрок."""
        reserved, wait = await self.reserve(chat_id, 0.0, extra)
        return 0.0 if reserved else wait

    async def wait_turn(
        self,
        chat_id: int | str | None,
        max_wait: float,
        extra: list[Bucket] | None = None,
        *,
        check_blocked: bool = False,
    ) -> float:
        """Дождаться своего слота, если он не дальше max_wait; иначе вернуть, сколько ждать.

        Проспавший свой слот дольше LATE_S (загруженная машина) слот не использует, а встаёт
        в очередь снова: иначе он ушёл бы вместе с отправителями следующих слотов, и Telegram
        увидел бы всплеск. Потерянный слот — цена только при таких задержках.
        """
        deadline = time.monotonic() + max_wait
        while True:
            reserved, wait = await self.reserve(
                chat_id, max(0.0, deadline - time.monotonic()), extra, check_blocked=check_blocked
            )
            if not reserved:
                return wait
            if wait <= 0:
                return 0.0
            slot = time.monotonic() + wait
            await asyncio.sleep(wait)
            if time.monotonic() - slot <= LATE_S:
                return 0.0

    async def aclose(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
            self._redis = None
