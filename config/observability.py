"""Редакция секретов, JSON-логи и Sentry.

Один и тот же redact() применяется к логам и к событиям Sentry: httpx пишет
URL Bot API вместе с токеном, а исключения PTB иногда содержат его же.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote, urlsplit

from config import env

REDACTED = "[REDACTED]"

_PATTERNS = [
    # Токен бота: 123456:AA..., в том числе с %3A/%3a из закодированных URL
    re.compile(r"\d{5,12}(?::|%3[Aa])[A-Za-z0-9_-]{30,}"),
    # Ключи Google API
    re.compile(r"AIza[0-9A-Za-z_-]{35}"),
    # JWT (ключи Supabase) и новые секретные ключи Supabase
    re.compile(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),
    re.compile(r"sb_secret_[A-Za-z0-9_-]{16,}"),
    # Закрытый ключ PEM (сервисный аккаунт Google). Тело — base64 и переводы строк (в JSON — «\n»
    # литералом), END необязателен: обрезанный ключ тоже вырезается, а один класс символов без .*?
    # не даёт квадратичного перебора на длинном вводе
    re.compile(
        r"-----BEGIN [A-Z ]{0,30}PRIVATE KEY-----[A-Za-z0-9+/=\s\\]*"
        r"(?:-----END [A-Z ]{0,30}PRIVATE KEY-----)?"
    ),
    # Заголовки и параметры с ключами
    re.compile(
        r"(?i)((?:x-goog-api-key|apikey|authorization|x-api-key)[\"']?\s*[:=]\s*[\"']?)(?:bearer\s+|basic\s+)?[^\s\"',}]+"
    ),
    re.compile(r"(?i)([?&](?:key|token|api_key)=)[^&\s\"']+"),
    # Пароль в URL подключения (схема://пользователь:пароль@хост); у Redis пользователь бывает пустым
    re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]*:)[^@/\s]+(?=@)"),
]


def _url_passwords(url: str) -> list[str]:
    """Пароль из URL подключения как есть и раскодированный (%40 → @): драйвер печатает второй.

    Пароль, совпадающий с именем пользователя или базы (compose: nanobanana), не секрет, а его
    вырезание испортило бы каждую строку журнала с именем базы."""
    try:
        parts = urlsplit(url)
        password = parts.password or ""
    except ValueError:
        return []
    if password in {parts.username or "", parts.path.strip("/")}:
        return []
    return [password, unquote(password)]


def _configured_secrets() -> list[str]:
    values = [
        env.TELEGRAM_BOT_TOKEN,
        env.TELEGRAM_NOTIFY_TOKEN,
        env.TG_WEBHOOK_SECRET,
        env.GEMINI_API_KEY,
        env.SUPABASE_SERVICE_ROLE_KEY,
        env.LAVA_API_KEY,
        env.LAVA_WEBHOOK_API_KEY,
        env.LAVA_WEBHOOK_PASSWORD,
        env.METRICS_TOKEN,
        env.GOOGLE_APPLICATION_CREDENTIALS_JSON,
        # Пароли из URL подключения: драйверы печатают их и не в виде URL (аргументы, repr настроек)
        *_url_passwords(env.DATABASE_URL),
        *_url_passwords(env.REDIS_URL),
    ]
    # Короткие значения не вырезаем: слишком много ложных совпадений
    return sorted({v for v in values if len(v) >= 8}, key=len, reverse=True)


_SECRETS = _configured_secrets()


def redact(text: str, extra_secrets: Iterable[str] = ()) -> str:
    """Вырезать известные секреты и всё, что на них похоже."""
    for secret in (*_SECRETS, *extra_secrets):
        if secret and secret in text:
            text = text.replace(secret, REDACTED)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: (m.group(1) if m.groups() else "") + REDACTED, text)
    return text


def redact_data(value: Any) -> Any:
    """Рекурсивно вырезать секреты из структуры (событие Sentry, контекст ошибки)."""
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {k: redact_data(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(redact_data(v) for v in value)
    return value


class RedactingFilter(logging.Filter):
    """Фильтр логирования: форматирует сообщение заранее и вырезает секреты."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Текст исключения тоже может нести URL с токеном
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def redact_log_handlers(logger: logging.Logger, **kwargs: Any) -> None:
    """Повесить RedactingFilter на обработчики логгера, у которых его нет.

    Для сигналов Celery: логгеру celery.task (get_task_logger) Celery ставит свой обработчик
    и выключает propagate — записи задач идут мимо фильтра обработчика root из LOGGING.
    """
    for handler in logger.handlers:
        if not any(isinstance(existing, RedactingFilter) for existing in handler.filters):
            handler.addFilter(RedactingFilter())


class JsonFormatter(logging.Formatter):
    """Одна JSON-строка на запись — для сборщиков логов в production."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, tz=UTC).isoformat(),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "process": record.process,
        }
        if record.exc_info:
            payload["exc"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exc"] = record.exc_text
        return json.dumps(payload, ensure_ascii=False)


def sentry_before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return redact_data(event)  # type: ignore[no-any-return]


def sentry_before_send_transaction(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    # Спаны http.client (aiohttp, httpx) хранят полный URL /bot<token>/<method> в description и data
    return redact_data(event)  # type: ignore[no-any-return]


def sentry_before_breadcrumb(crumb: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any]:
    return redact_data(crumb)  # type: ignore[no-any-return]


def init_sentry(*, dsn: str, environment: str, traces_sample_rate: float) -> None:
    import sentry_sdk
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.django import DjangoIntegration

    sentry_sdk.init(
        dsn=dsn,
        environment=environment,
        integrations=[DjangoIntegration(), CeleryIntegration()],
        # Ни send_default_pii (устарел в 2.x), ни data_collection: по умолчанию персональные данные не
        # собираются и стоит EventScrubber SDK
        traces_sample_rate=traces_sample_rate,
        before_send=sentry_before_send,  # type: ignore[arg-type]
        before_send_transaction=sentry_before_send_transaction,  # type: ignore[arg-type]
        before_breadcrumb=sentry_before_breadcrumb,
    )
