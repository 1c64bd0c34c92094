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
        group, _ = ErrorGroup.objects.get_or_create(
            fingerprint=fingerprint, defaults={"title": title, "source": source}
        )
        ErrorGroup.objects.filter(pk=group.pk).update(count=F("count") + 1)
        ErrorEvent.objects.create(
            group=group,
            stack=redact("".join(traceback.format_exception(exc))),
            context=redact_data(context or {}),
        )
    # Sentry получает то же событие через интеграцию логирования
    logger.error("%s error [%s]: %s", source, fingerprint[:8], title, exc_info=exc)
    return group
