"""Обработка одного вызова Bot API: токен → метод → спецификация → лимиты → сбои → поведение.

Порядок проверок повторяет Telegram: неизвестный метод — 404 раньше проверки полей,
кривые поля — 400 раньше лимита частоты. Каждый вызов пишется в журнал (без токена).
"""

from __future__ import annotations

import hmac
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import Q

from botapp.sandbox import limits, methods, ratelimit, spec
from botapp.sandbox.errors import NOT_FOUND, UNAUTHORIZED, ApiError
from botapp.sandbox.models import SandboxCall, SandboxFailure
from botapp.sandbox.spec import Upload
from botapp.sandbox.state import BotIdentity, bot_from_token


def authorize(token: str) -> BotIdentity:
    """Токен из URL: совпадает с TELEGRAM_BOT_TOKEN, а без него — любой правильного вида."""
    bot = bot_from_token(token)
    expected = settings.TELEGRAM_BOT_TOKEN
    if bot is None or (expected and not hmac.compare_digest(token.encode(), expected.encode())):
        raise UNAUTHORIZED
    return bot


def _chat_key(params: dict[str, Any]) -> int | None:
    value = params.get("chat_id")
    if isinstance(value, int):
        return value
    if isinstance(value, str) and value.lstrip("-").isdigit():
        return int(value)
    return None


def _take_failure(method: str, chat_id: int | None) -> ApiError | None:
    """Заказанный тестом сбой (в БД — виден всем процессам); счётчик уменьшается атомарно."""
    with transaction.atomic():
        chat_filter = (
            Q(chat_id__isnull=True) | Q(chat_id=chat_id) if chat_id is not None else Q(chat_id__isnull=True)
        )
        failure = (
            SandboxFailure.objects.select_for_update()
            .filter(chat_filter, method=method, remaining__gt=0)
            .order_by("id")
            .first()
        )
        if failure is None:
            return None
        if failure.remaining <= 1:
            failure.delete()
        else:
            failure.remaining -= 1
            failure.save(update_fields=["remaining"])
    error = ApiError(failure.error_code, failure.description, failure.parameters or None)
    error.injected = True
    return error


def loggable(value: Any) -> Any:
    """Параметры для журнала: вместо байтов загрузки — имя и размер."""
    if isinstance(value, Upload):
        return {"upload": value.filename, "size": value.size}
    if isinstance(value, dict):
        return {k: loggable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [loggable(v) for v in value]
    return value


def _log(
    method: str, params: dict[str, Any], status: int, error: str = "", *, injected: bool = False
) -> None:
    SandboxCall.objects.create(
        method=method[:64],
        chat_id=_chat_key(params),
        params=loggable(params),
        status=status,
        error=error[:255],
        injected=injected,
    )


def _run(
    method: str, raw: dict[str, Any], uploads: dict[str, Upload], bot: BotIdentity, received_at: float | None
) -> tuple[Any, dict[str, Any]]:
    params = spec.validate(method, raw, uploads)
    request = methods.Request(method=method, params=params, uploads=uploads, bot=bot)
    limits.precheck(request)
    chat_id = _chat_key(params)
    injected = _take_failure(method, chat_id)
    if injected is not None:
        raise injected
    if ratelimit.is_limited(method):
        wait_ms = ratelimit.acquire(chat_id, received_at=received_at)
        if wait_ms > 0:
            seconds = ratelimit.retry_after_seconds(wait_ms)
            raise ApiError(429, f"Too Many Requests: retry after {seconds}", {"retry_after": seconds})
    with transaction.atomic():
        return methods.dispatch(request), params


def handle(
    *,
    token: str,
    method_name: str,
    raw: dict[str, Any],
    uploads: dict[str, Upload],
    received_at: float | None = None,
) -> tuple[int, dict[str, Any]]:
    """Ответ Bot API (статус, тело) на вызов метода; исключения наружу не выходят, кроме ошибок кода.

    received_at — момент прихода запроса: лимиты Telegram считает по приходу, а не по
    моменту, когда до запроса дошла очередь в нашем процессе.
    """
    files_in_log = {name: upload for name, upload in uploads.items() if name not in raw}
    try:
        bot = authorize(token)
        method = spec.canonical_method(method_name)
        if method is None:
            raise NOT_FOUND
    except ApiError as exc:
        _log(method_name, {**raw, **files_in_log}, exc.code, exc.description)
        return exc.code, exc.payload()
    try:
        result, params = _run(method, raw, uploads, bot, received_at)
    except ApiError as exc:
        _log(method, {**raw, **files_in_log}, exc.code, exc.description, injected=exc.injected)
        return exc.code, exc.payload()
    attached = {name: upload for name, upload in uploads.items() if params.get(name) is not upload}
    _log(method, {**params, "_attachments": attached} if attached else params, 200)
    return 200, {"ok": True, "result": result}
