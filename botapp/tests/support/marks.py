"""Отметки «заблокировал бота» в Redis глазами отправителя любого процесса (тот же Redis и префикс)."""

from __future__ import annotations

from botapp.telegram.ratelimit import MarkedBlocked, SendLimiter


async def marked_blocked(chat_id: int) -> bool:
    limiter = SendLimiter()
    try:
        await limiter.reserve(chat_id, 0.0, check_blocked=True)
    except MarkedBlocked:
        return True
    finally:
        await limiter.aclose()
    return False


async def mark_blocked(chat_id: int) -> None:
    limiter = SendLimiter()
    try:
        await limiter.set_blocked(chat_id, True)
    finally:
        await limiter.aclose()
