"""Запись ошибок с устойчивым отпечатком: одна группа на место и тип ошибки."""

from __future__ import annotations

import hashlib
import logging
import traceback
from typing import Any

from django.db import transaction
from django.db.models import F

from botapp.models import ErrorEvent, ErrorGroup
from config.observability import redact, redact_data

logger = logging.getLogger(__name__)

# Критичные источники: деньги, обработчики Telegram, генерация (и их подысточники «billing.reconcile»…).
# Первая же группа из них — оповещение в TELEGRAM_NOTIFY_CHAT_ID (Документация/metrics.md)
CRITICAL_SOURCES = ("billing", "telegram.handler", "generation")


def error_is_critical(source: str) -> bool:
    return any(source == root or source.startswith(f"{root}.") for root in CRITICAL_SOURCES)


def _alert_new_group(group: ErrorGroup) -> None:
    from botapp.ops.notify import alert_send

    # Ключ на отпечаток: кулдаун в общем кэше, повтор из другого процесса не шлёт второй раз
    text = f"🆕 Новая критичная ошибка [{group.source}]: {group.title}\n/dashboard/errors/{group.pk}/"
    alert_send(key=f"error-new:{group.fingerprint}", text=text)


def error_fingerprint(*, source: str, exc: BaseException) -> str:
    """Тип исключения + кадры нашего кода (файл и функция, без номеров строк и значений).

    Так правка соседней строки или другой user_id не плодят новых групп.
    """
    frames = [
        f"{frame.filename.rsplit('/botapp/', 1)[-1]}:{frame.name}"
        for frame in traceback.extract_tb(exc.__traceback__)
        if "/botapp/" in frame.filename
    ]
    raw = "|".join([source, type(exc).__module__, type(exc).__qualname__, *frames])
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def error_record(*, source: str, exc: BaseException, context: dict[str, Any] | None = None) -> ErrorGroup:
    fingerprint = error_fingerprint(source=source, exc=exc)
    title = redact(f"{type(exc).__name__}: {exc}")[:300]
    with transaction.atomic():
        group, created = ErrorGroup.objects.get_or_create(
            fingerprint=fingerprint, defaults={"title": title, "source": source}
        )
        ErrorGroup.objects.filter(pk=group.pk).update(count=F("count") + 1)
        ErrorEvent.objects.create(
            group=group,
            stack=redact("".join(traceback.format_exception(exc))),
            context=redact_data(context or {}),
        )
        if created and error_is_critical(source):
            transaction.on_commit(lambda: _alert_new_group(group))
    # Sentry получает то же событие через интеграцию логирования
    logger.error("%s error [%s]: %s", source, fingerprint[:8], title, exc_info=exc)
    return group
