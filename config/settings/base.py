"""Общие настройки. Интеграции — в отдельных модулях рядом, подключаются в конце."""

from __future__ import annotations

import environ

from config import env, runtime

BASE_DIR = env.BASE_DIR
DATA_DIR = env.DATA_DIR

SECRET_KEY = env.SECRET_KEY
DEBUG = env.DEBUG
ALLOWED_HOSTS = env.ALLOWED_HOSTS or ["127.0.0.1", "localhost", "[::1]"]
PUBLIC_BASE_URL = env.PUBLIC_BASE_URL
LOCAL_BASE_URL = env.LOCAL_BASE_URL
CSRF_TRUSTED_ORIGINS = env.CSRF_TRUSTED_ORIGINS or ([env.PUBLIC_BASE_URL] if env.PUBLIC_BASE_URL else [])
EMBEDDED_DEFAULTS = env.embedded_defaults()

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_celery_beat",
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "botapp.apps.BotappConfig",
    # Эмулятор Bot API: приложение установлено всегда (одинаковые миграции), URL — только в песочнице
    "botapp.sandbox.apps.SandboxConfig",
    "dashboard.apps.DashboardConfig",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Отмечает request.user.is_verified(): вход подтверждён кодом TOTP
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Ограничение неудачных входов персонала (последним: видит итог аутентификации)
    "axes.middleware.AxesMiddleware",
]

AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

ROOT_URLCONF = "config.urls"
ASGI_APPLICATION = "config.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


def _sqlite_options() -> dict[str, object]:
    # WAL + IMMEDIATE: веб, воркер и beat пишут в один файл без "database is locked"
    return {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }


def _database() -> dict[str, object]:
    """PostgreSQL или SQLite из DATABASE_URL; без неё — встроенный SQLite (WAL) для локального запуска."""
    if not env.DATABASE_URL:
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": DATA_DIR / "db.sqlite3",
            "OPTIONS": _sqlite_options(),
        }
    config: dict[str, object] = environ.Env.db_url_config(env.DATABASE_URL)
    if config["ENGINE"] == "django.db.backends.sqlite3":
        # sqlite:/// — тот же режим, что у встроенного; connect_timeout и пул psycopg SQLite не принимает
        config["OPTIONS"] = _sqlite_options()
        return config
    options: dict[str, object] = {"connect_timeout": env.DB_CONNECT_TIMEOUT_S}
    if runtime.is_asgi():
        # ASGI: соединения не живут между запросами (CONN_MAX_AGE=0), их держит пул psycopg.
        # CONN_HEALTH_CHECKS у пула — пустой запрос при выдаче: после перезапуска PostgreSQL мёртвое
        # соединение заменяется новым, а не превращает апдейт в 500 (цена — короткий поход на выдачу)
        options["pool"] = {"min_size": 1, "max_size": 10, "timeout": 10}
        config["CONN_MAX_AGE"] = 0
        config["CONN_HEALTH_CHECKS"] = True
    else:
        config["CONN_MAX_AGE"] = 60
        config["CONN_HEALTH_CHECKS"] = True
    config["OPTIONS"] = options
    return config


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "ru"
LANGUAGES = [("ru", "Русский"), ("en", "English")]
LOCALE_PATHS = [BASE_DIR / "botapp" / "locale"]
TIME_ZONE = env.TIME_ZONE
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATIC_ROOT = DATA_DIR / "static"
MEDIA_ROOT = DATA_DIR / "media"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}

# Redis один на всех, разделение — префиксом ключей (кэш, брокер, лимитер)
REDIS_URL = env.REDIS_URL
REDIS_KEY_PREFIX = env.REDIS_KEY_PREFIX
if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": f"{REDIS_KEY_PREFIX}cache",
            "OPTIONS": {"socket_timeout": 2, "socket_connect_timeout": 2},
        }
    }
else:
    # Встроенная замена Redis: файловый кэш виден всем локальным процессам
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(DATA_DIR / "cache"),
        }
    }

HEALTH_CACHE_S = env.HEALTH_CACHE_S
RELEASE = env.RELEASE

from config.settings.celery import *  # noqa: E402, F403
from config.settings.gemini import *  # noqa: E402, F403
from config.settings.logging import *  # noqa: E402, F403
from config.settings.metrics import *  # noqa: E402, F403
from config.settings.payments import *  # noqa: E402, F403
from config.settings.sentry import *  # noqa: E402, F403
from config.settings.storage import *  # noqa: E402, F403
from config.settings.telegram import *  # noqa: E402, F403
