"""Один фильтр вырезает токены и ключи и из логов, и из событий Sentry."""

from __future__ import annotations

import asyncio
import io
import logging
import logging.config
from typing import Any

import aiohttp
import httpx
import pytest
import sentry_sdk
from django.conf import settings
from sentry_sdk.transport import Transport

from botapp.tests.support.fakes import fake_bot_api, fake_bot_token
from config import env, observability
from config.observability import (
    RedactingFilter,
    init_sentry,
    redact,
    sentry_before_breadcrumb,
    sentry_before_send,
)

TOKEN = fake_bot_token()
GOOGLE_KEY = "AIza" + "SyD-1234567890abcdefghijklmnopqrstu"  # pragma: allowlist secret


def test_it_removes_a_bot_token_from_an_httpx_log_line() -> None:
    stream = io.StringIO()
    config = {**settings.LOGGING, "root": {"handlers": ["console"], "level": "INFO"}}
    config["loggers"] = {"httpx": {"level": "INFO"}}
    logging.config.dictConfig(config)
    handler = logging.getLogger().handlers[0]
    handler.setStream(stream)  # type: ignore[attr-defined]
    try:
        logging.getLogger("httpx").info(
            'HTTP Request: %s %s "%s %d %s"',
            "POST", f"https://api.telegram.org/bot{TOKEN}/sendMessage", "HTTP/1.1", 200, "OK",
        )  # fmt: skip
        logging.getLogger("httpx").info(
            "file url https://api.telegram.org/file/bot%s/photos/1.jpg", TOKEN.replace(":", "%3A")
        )
    finally:
        logging.config.dictConfig(settings.LOGGING)
    output = stream.getvalue()
    assert "sendMessage" in output
    assert "[REDACTED]" in output
    assert TOKEN not in output
    assert TOKEN.split(":")[1] not in output


def test_it_removes_secrets_from_exception_text() -> None:
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, None)
    try:
        raise RuntimeError(f"connect to https://generativelanguage.googleapis.com/?key={GOOGLE_KEY}")
    except RuntimeError:
        import sys

        record.exc_info = sys.exc_info()
    RedactingFilter().filter(record)
    assert record.exc_text is not None
    assert GOOGLE_KEY not in record.exc_text
    assert "RuntimeError" in record.exc_text


@pytest.mark.parametrize(
    "secret_text",
    [
        f"x-goog-api-key: {GOOGLE_KEY}",
        "Authorization: Bearer sk_live_abcdefghijklmnop",
        "postgres://app:hunter2-long-password@db.internal:5432/app",  # pragma: allowlist secret
    ],
)
def test_redact_covers_headers_and_urls(secret_text: str) -> None:
    cleaned = redact(secret_text)
    assert "[REDACTED]" in cleaned
    for secret in (GOOGLE_KEY, "sk_live_abcdefghijklmnop", "hunter2-long-password"):
        assert secret not in cleaned


@pytest.mark.parametrize(
    ("secret_text", "secret"),
    [
        # Токен в URL, закодированный строчными буквами (%3a)
        (f"https://api.telegram.org/file/bot{TOKEN.replace(':', '%3a')}/x.jpg", TOKEN.split(":")[1]),
        # REDIS_URL без имени пользователя — обычная форма у Redis
        (
            "redis://:hunter2-redis-password@redis.internal:6379/0",  # pragma: allowlist secret
            "hunter2-redis-password",
        ),
        # Секретный ключ Supabase нового формата
        (
            "apikey sb_secret_N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",  # pragma: allowlist secret
            "N7UND0UgjKTVK-Uodkm0Hg_xSvEMPvz",  # pragma: allowlist secret
        ),
        # Закрытый ключ сервисного аккаунта в repr словаря (переводы строк — «\n» литералом)
        (
            "{'private_key': '-----BEGIN PRIVATE KEY-----"  # pragma: allowlist secret
            "\\nMIIEvQIBADANBgkqhkiG9w0BAQEFAASC\\n-----END PRIVATE KEY-----\\n'}",
            "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
        ),
        # Обрезанный ключ (длинная строка лога оборвалась до END)
        (
            "private_key=-----BEGIN RSA PRIVATE KEY-----"  # pragma: allowlist secret
            "\nMIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo",
            "MIIEowIBAAKCAQEAu1SU1LfVLPHCozMxH2Mo",
        ),
    ],
    # Явные имена: токен случайный, а pytest-xdist требует одинаковых имён тестов во всех процессах
    ids=[
        "token-lowercase-%3a",
        "redis-url-without-user",
        "supabase-sb-secret",
        "pem-private-key",
        "pem-truncated",
    ],
)
def test_redact_covers_less_common_secret_forms(secret_text: str, secret: str) -> None:
    cleaned = redact(secret_text)
    assert secret not in cleaned
    assert "[REDACTED]" in cleaned


def test_redact_removes_connection_passwords_configured_in_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Драйвер печатает пароль и не в виде URL (аргументы подключения), и уже раскодированным
    database_url = "postgres://app:p%40ss-w0rd-db-secret@db:5432/app"  # pragma: allowlist secret
    redis_url = "redis://default:redis-secret-value-123@redis:6379"  # pragma: allowlist secret
    monkeypatch.setattr(env, "DATABASE_URL", database_url)
    monkeypatch.setattr(env, "REDIS_URL", redis_url)
    monkeypatch.setattr(observability, "_SECRETS", observability._configured_secrets())
    cleaned = redact("connect(password='p@ss-w0rd-db-secret') auth redis-secret-value-123")
    assert "p@ss-w0rd-db-secret" not in cleaned
    assert "redis-secret-value-123" not in cleaned


def test_a_password_equal_to_the_user_name_is_not_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    # docker-compose: nanobanana:nanobanana@…/nanobanana — иначе вырезалось бы каждое упоминание базы
    compose_url = "postgres://nanobanana:nanobanana@postgres:5432/nanobanana"  # pragma: allowlist secret
    monkeypatch.setattr(env, "DATABASE_URL", compose_url)
    monkeypatch.setattr(observability, "_SECRETS", observability._configured_secrets())
    assert redact("database nanobanana is ready") == "database nanobanana is ready"


class CapturingTransport(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)


def test_it_removes_a_bot_token_from_a_sentry_event() -> None:
    transport = CapturingTransport()
    sentry_sdk.init(
        dsn="http://public@127.0.0.1:9/1",
        transport=transport,
        before_send=sentry_before_send,  # type: ignore[arg-type]
        before_breadcrumb=sentry_before_breadcrumb,
        default_integrations=False,
    )
    try:
        sentry_sdk.add_breadcrumb(category="httpx", message=f"POST https://api.telegram.org/bot{TOKEN}/getMe")
        try:
            raise ValueError(f"Bad Request for url https://api.telegram.org/bot{TOKEN}/sendPhoto")
        except ValueError as exc:
            sentry_sdk.capture_exception(exc)
        sentry_sdk.flush()
    finally:
        sentry_sdk.init(dsn=None)
    payload = b"".join(item.payload.get_bytes() for env in transport.envelopes for item in env.items)
    assert b"sendPhoto" in payload
    assert b"getMe" in payload
    assert TOKEN.encode() not in payload
    assert TOKEN.split(":")[1].encode() not in payload


def test_it_removes_a_bot_token_from_sentry_performance_traces(monkeypatch: pytest.MonkeyPatch) -> None:
    """Спаны http.client (aiohttp — клиент бота, httpx) несут полный URL /bot<token>/<method>."""
    transport = CapturingTransport()
    real_init = sentry_sdk.init
    # Настройка — та же, что в production (init_sentry), меняется только транспорт
    monkeypatch.setattr(sentry_sdk, "init", lambda **options: real_init(transport=transport, **options))

    async def aiohttp_call(url: str) -> None:
        async with aiohttp.ClientSession() as session, session.post(url, json={}) as response:
            await response.read()

    with fake_bot_api(lambda method, params: True) as (base, _api):
        init_sentry(dsn="http://public@127.0.0.1:9/1", environment="test", traces_sample_rate=1.0)
        try:
            with sentry_sdk.start_transaction(op="celery.task", name="deliver"):
                asyncio.run(aiohttp_call(f"{base}/bot{TOKEN}/sendPhoto"))
                httpx.post(f"{base}/bot{TOKEN}/sendMessage", json={})
            sentry_sdk.flush()
        finally:
            real_init(dsn=None)
    payload = b"".join(envelope.serialize() for envelope in transport.envelopes)
    # Спаны обоих клиентов дошли до транспорта — иначе проверять было бы нечего
    assert b"sendPhoto" in payload
    assert b"sendMessage" in payload
    assert TOKEN.encode() not in payload
    assert TOKEN.split(":")[1].encode() not in payload
