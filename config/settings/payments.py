"""Платежи: Telegram Stars всегда, lava.top — только при LAVA_ENABLED."""

from __future__ import annotations

from config import env

LAVA_ENABLED = env.LAVA_ENABLED
LAVA_API_KEY = env.LAVA_API_KEY
LAVA_API_BASE_URL = env.LAVA_API_BASE_URL
LAVA_WEBHOOK_API_KEY = env.LAVA_WEBHOOK_API_KEY
LAVA_WEBHOOK_USER = env.LAVA_WEBHOOK_USER
LAVA_WEBHOOK_PASSWORD = env.LAVA_WEBHOOK_PASSWORD

# Сверка журнала денег (периодическая задача maintenance.reconcile_ledger)
LEDGER_RECONCILE_INTERVAL_S = 3600
# Сколько последних транзакций звёзд сверять с Telegram за проход
STARS_RECONCILE_LIMIT = 1000
