"""Telegram: токен, секрет вебхука, базовый URL Bot API и лимиты отправки."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config import env

if env.TELEGRAM_BOT_TOKEN and not env.TELEGRAM_SANDBOX and not env.TG_WEBHOOK_SECRET:
    # Режим вебхука без секрета принимал бы апдейты от кого угодно
    raise ImproperlyConfigured("TG_WEBHOOK_SECRET: required when TELEGRAM_BOT_TOKEN is set (webhook mode)")

# Песочница: нет токена или явно включена (никогда в production)
TELEGRAM_SANDBOX = env.TELEGRAM_SANDBOX or not env.TELEGRAM_BOT_TOKEN
# В песочнице бот говорит со встроенным эмулятором Bot API на том же порту
SANDBOX_BOT_TOKEN = "1000000001:SANDBOX-local-token-not-a-secret-000000"  # noqa: S105  # pragma: allowlist secret
SANDBOX_WEBHOOK_SECRET = "sandbox-webhook-secret"  # noqa: S105  # pragma: allowlist secret
TELEGRAM_BOT_TOKEN = env.TELEGRAM_BOT_TOKEN or (SANDBOX_BOT_TOKEN if TELEGRAM_SANDBOX else "")
TG_WEBHOOK_SECRET = env.TG_WEBHOOK_SECRET or (SANDBOX_WEBHOOK_SECRET if TELEGRAM_SANDBOX else "")
TELEGRAM_API_BASE_URL = env.TELEGRAM_API_BASE_URL or (
    (env.TELEGRAM_SANDBOX_API_URL or f"{env.LOCAL_BASE_URL}/sandbox/api")
    if TELEGRAM_SANDBOX
    else "https://api.telegram.org"
)
TELEGRAM_RATE_OVERALL = env.TELEGRAM_RATE_OVERALL
TELEGRAM_RATE_PER_CHAT = env.TELEGRAM_RATE_PER_CHAT
TELEGRAM_RATE_PER_GROUP = env.TELEGRAM_RATE_PER_GROUP
# Уведомления операторам: свой бот или основной
TELEGRAM_NOTIFY_TOKEN = env.TELEGRAM_NOTIFY_TOKEN or env.TELEGRAM_BOT_TOKEN
TELEGRAM_NOTIFY_CHAT_ID = env.TELEGRAM_NOTIFY_CHAT_ID
INBOX_LEASE_S = env.INBOX_LEASE_S
WEBHOOK_ERROR_WINDOW_S = 600
WEBHOOK_INFO_CACHE_S = 60
