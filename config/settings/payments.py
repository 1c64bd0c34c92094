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
# Сверка звёзд листает getStarTransactions до конца списка; один проход ограничен страницами (по 100
# транзакций) и временем — с запасом до мягкого лимита задачи (CELERY_TASK_SOFT_TIME_LIMIT = 300 с).
# Остаток дочитает следующий проход: курсор в БД
STARS_RECONCILE_MAX_PAGES = 500
STARS_RECONCILE_BUDGET_S = 120
