"""Логи: читаемые локально, JSON в production; токены вырезаются фильтром."""

from __future__ import annotations

from config import env

LOG_JSON = env.LOG_JSON
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "config.observability.RedactingFilter"}},
    "formatters": {
        "readable": {"format": "%(asctime)s %(levelname)-7s %(name)s: %(message)s"},
        "json": {"()": "config.observability.JsonFormatter"},
    },
    "handlers": {
        "console": {
            "class": "logging.StreamHandler",
            "formatter": "json" if LOG_JSON else "readable",
            "filters": ["redact"],
        },
    },
    "root": {"handlers": ["console"], "level": env.LOG_LEVEL},
    "loggers": {
        # httpx пишет URL Bot API с токеном на INFO: фильтр его вырежет, но и шум ни к чему
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        "django.db.backends": {"level": "INFO"},
    },
}
