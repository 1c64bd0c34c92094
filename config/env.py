"""Единственное место, где читается окружение процесса.

Остальной код получает значения отсюда: так видно все переменные разом, а
проверки production-настроек знают, какие из них остались по умолчанию.
"""

from __future__ import annotations

from pathlib import Path

import environ

BASE_DIR = Path(__file__).resolve().parent.parent

_env = environ.Env()

# Ключ для локального запуска.
# Намеренно публичный: production.py отказывается стартовать с ним.
DEV_SECRET_KEY = "dev-insecure-secret-key-change-me"  # noqa: S105  # pragma: allowlist secret


def _str(name: str, default: str = "") -> str:
    return str(_env.str(name, default=default)).strip()


def _bool(name: str, default: bool) -> bool:
    return bool(_env.bool(name, default=default))


def _int(name: str, default: int) -> int:
    return int(_env.int(name, default=default))


def _float(name: str, default: float) -> float:
    return float(_env.float(name, default=default))


def _list(name: str) -> list[str]:
    return [item.strip() for item in _env.list(name, default=[]) if item.strip()]


def is_set(name: str) -> bool:
    """Задана ли переменная непустым значением (для проверок production)."""
    return bool(_str(name))


# --- Django ---
SECRET_KEY = _str("SECRET_KEY") or DEV_SECRET_KEY
DEBUG = _bool("DEBUG", False)
ALLOWED_HOSTS = _list("ALLOWED_HOSTS")
CSRF_TRUSTED_ORIGINS = _list("CSRF_TRUSTED_ORIGINS")
PORT = _int("PORT", 8000)
# Этот же сервис на этой машине (make run): адрес песочницы и ссылок на локальные файлы без PUBLIC_BASE_URL
LOCAL_BASE_URL = f"http://127.0.0.1:{PORT}"
PUBLIC_BASE_URL = _str("PUBLIC_BASE_URL").rstrip("/")
DATA_DIR = Path(_str("DATA_DIR") or str(BASE_DIR / "var"))
LOG_LEVEL = _str("LOG_LEVEL", "INFO").upper()
LOG_JSON = _bool("LOG_JSON", False)
TIME_ZONE = _str("TIME_ZONE", "Europe/Moscow")

# --- PostgreSQL / Redis ---
DATABASE_URL = _str("DATABASE_URL")
DB_CONNECT_TIMEOUT_S = _int("DB_CONNECT_TIMEOUT_S", 5)
REDIS_URL = _str("REDIS_URL")
REDIS_KEY_PREFIX = _str("REDIS_KEY_PREFIX", "nb:")

# --- Telegram ---
TELEGRAM_BOT_TOKEN = _str("TELEGRAM_BOT_TOKEN")
TG_WEBHOOK_SECRET = _str("TG_WEBHOOK_SECRET")
TELEGRAM_API_BASE_URL = _str("TELEGRAM_API_BASE_URL").rstrip("/")
# Только песочница: где этот процесс найдёт эмулятор (worker и beat в docker compose — в контейнере web)
TELEGRAM_SANDBOX_API_URL = _str("TELEGRAM_SANDBOX_API_URL").rstrip("/")
TELEGRAM_SANDBOX = _bool("TELEGRAM_SANDBOX", False)
TELEGRAM_RATE_OVERALL = _float("TELEGRAM_RATE_OVERALL", 30.0)
TELEGRAM_RATE_PER_CHAT = _float("TELEGRAM_RATE_PER_CHAT", 1.0)
TELEGRAM_RATE_PER_GROUP = _float("TELEGRAM_RATE_PER_GROUP", 20.0)
TELEGRAM_NOTIFY_TOKEN = _str("TELEGRAM_NOTIFY_TOKEN")
TELEGRAM_NOTIFY_CHAT_ID = _str("TELEGRAM_NOTIFY_CHAT_ID")
INBOX_LEASE_S = _int("INBOX_LEASE_S", 30)

# --- Gemini / Veo ---
GEMINI_API_KEY = _str("GEMINI_API_KEY")
GEMINI_API_BASE_URL = _str("GEMINI_API_BASE_URL").rstrip("/")
GEMINI_OFFLINE = _bool("GEMINI_OFFLINE", False)
GEMINI_OFFLINE_LATENCY_S = _float("GEMINI_OFFLINE_LATENCY_S", 0.0)
GENERATION_LEASE_S = _int("GENERATION_LEASE_S", 300)
GENERATION_MAX_IN_FLIGHT_PER_USER = _int("GENERATION_MAX_IN_FLIGHT_PER_USER", 2)
VIDEO_POLL_INTERVAL_S = _int("VIDEO_POLL_INTERVAL_S", 10)
USE_VERTEX_AI = _bool("USE_VERTEX_AI", False)
GOOGLE_CLOUD_PROJECT = _str("GOOGLE_CLOUD_PROJECT")
GOOGLE_CLOUD_LOCATION = _str("GOOGLE_CLOUD_LOCATION", "global")
GOOGLE_APPLICATION_CREDENTIALS = _str("GOOGLE_APPLICATION_CREDENTIALS")
GOOGLE_APPLICATION_CREDENTIALS_JSON = _str("GOOGLE_APPLICATION_CREDENTIALS_JSON")

# --- Хранилище медиа ---
SUPABASE_URL = _str("SUPABASE_URL").rstrip("/")
SUPABASE_SERVICE_ROLE_KEY = _str("SUPABASE_SERVICE_ROLE_KEY")
SUPABASE_BUCKET = _str("SUPABASE_BUCKET", "images")
SUPABASE_VIDEO_BUCKET = _str("SUPABASE_VIDEO_BUCKET", "videos")
MEDIA_RETENTION_DAYS = _int("MEDIA_RETENTION_DAYS", 30)

# --- Платежи (lava.top) ---
LAVA_ENABLED = _bool("LAVA_ENABLED", False)
LAVA_API_KEY = _str("LAVA_API_KEY")
LAVA_API_BASE_URL = _str("LAVA_API_BASE_URL", "https://gate.lava.top").rstrip("/")
LAVA_WEBHOOK_API_KEY = _str("LAVA_WEBHOOK_API_KEY")
LAVA_WEBHOOK_USER = _str("LAVA_WEBHOOK_USER")
LAVA_WEBHOOK_PASSWORD = _str("LAVA_WEBHOOK_PASSWORD")

# --- Наблюдаемость и доступ персонала ---
SENTRY_DSN = _str("SENTRY_DSN")
SENTRY_ENVIRONMENT = _str("SENTRY_ENVIRONMENT", "local")
SENTRY_TRACES_SAMPLE_RATE = _float("SENTRY_TRACES_SAMPLE_RATE", 0.0)
METRICS_TOKEN = _str("METRICS_TOKEN")
STAFF_2FA_REQUIRED = _bool("STAFF_2FA_REQUIRED", False)

# Версия выкатки (Railway задаёт сам): post-deploy-check ждёт именно её в /api/health
RELEASE = _str("RAILWAY_GIT_COMMIT_SHA")[:12]

# --- Celery ---
CELERY_WORKER_CONCURRENCY = _int("CELERY_WORKER_CONCURRENCY", 2)
# prefork — по умолчанию (изоляция процессов, лимиты времени задач); threads — для воркера очереди
# video_poll: опрос Veo — ожидание сети, и один процесс с нитями держит ту же нагрузку в разы меньшей памятью
CELERY_WORKER_POOL = _str("CELERY_WORKER_POOL", "prefork")
if CELERY_WORKER_POOL not in ("prefork", "threads", "solo"):
    raise ValueError(f"CELERY_WORKER_POOL: prefork, threads или solo, а не {CELERY_WORKER_POOL!r}")
HEALTH_CACHE_S = _float("HEALTH_CACHE_S", 2.0)

# --- тесты ---
# Номер процесса pytest-xdist (gw0, gw1…; пусто — один процесс) ставит сам xdist:
# config/settings/test.py разводит по нему DATA_DIR
PYTEST_XDIST_WORKER = _str("PYTEST_XDIST_WORKER")
DATA_DIR_GIVEN = is_set("DATA_DIR")


def embedded_defaults() -> dict[str, str]:
    """Какие интеграции работают на встроенных заменах и каких переменных не хватает."""
    used: dict[str, str] = {}
    if not DATABASE_URL:
        used["database"] = "DATABASE_URL"
    if not REDIS_URL:
        used["broker"] = "REDIS_URL"
    if not (SUPABASE_URL and SUPABASE_SERVICE_ROLE_KEY):
        used["storage"] = "SUPABASE_URL, SUPABASE_SERVICE_ROLE_KEY"
    if TELEGRAM_SANDBOX or not TELEGRAM_BOT_TOKEN:
        used["telegram"] = "TELEGRAM_SANDBOX" if TELEGRAM_SANDBOX else "TELEGRAM_BOT_TOKEN"
    if GEMINI_OFFLINE or not (GEMINI_API_KEY or USE_VERTEX_AI):
        used["gemini"] = "GEMINI_OFFLINE" if GEMINI_OFFLINE else "GEMINI_API_KEY"
    return used
