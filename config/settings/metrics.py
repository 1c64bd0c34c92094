"""Метрики /metrics и доступ персонала."""

from __future__ import annotations

from config import env

METRICS_TOKEN = env.METRICS_TOKEN
STAFF_2FA_REQUIRED = env.STAFF_2FA_REQUIRED
