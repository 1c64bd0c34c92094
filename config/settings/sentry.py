"""Sentry включается только при заданном SENTRY_DSN; PII не отправляется."""

from __future__ import annotations

from config import env

SENTRY_DSN = env.SENTRY_DSN
SENTRY_ENVIRONMENT = env.SENTRY_ENVIRONMENT
SENTRY_TRACES_SAMPLE_RATE = env.SENTRY_TRACES_SAMPLE_RATE

if SENTRY_DSN:
    from config.observability import init_sentry

    init_sentry(dsn=SENTRY_DSN, environment=SENTRY_ENVIRONMENT, traces_sample_rate=SENTRY_TRACES_SAMPLE_RATE)
