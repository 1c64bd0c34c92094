"""Production: всё небезопасное по умолчанию — ошибка запуска с именами переменных."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured

from config import env
from config.settings.base import *  # noqa: F403
from config.settings.base import EMBEDDED_DEFAULTS

STAFF_2FA_REQUIRED = True
LOG_JSON = True
LOGGING["handlers"]["console"]["formatter"] = "json"  # type: ignore[index]  # noqa: F405

# Healthcheck Railway приходит с этим Host; без него /api/health/live ответил бы 400
ALLOWED_HOSTS = [*ALLOWED_HOSTS, "healthcheck.railway.app"]  # noqa: F405

# За прокси Railway: HTTPS определяется по X-Forwarded-Proto
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_SSL_REDIRECT = True
# Проверки здоровья платформы ходят по HTTP внутри сети — без редиректа
SECURE_REDIRECT_EXEMPT = [r"^api/health", r"^metrics$"]
SECURE_HSTS_SECONDS = 31_536_000
SECURE_HSTS_INCLUDE_SUBDOMAINS = True
SECURE_HSTS_PRELOAD = True
SESSION_COOKIE_SECURE = True
CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True


def unsafe_production_settings() -> list[str]:
    """Список проблем конфигурации, каждая с именем переменной."""
    problems: list[str] = []
    if env.DEBUG:
        problems.append("DEBUG: must be false in production")
    if env.SECRET_KEY == env.DEV_SECRET_KEY or len(env.SECRET_KEY) < 50:
        problems.append("SECRET_KEY: set a random value of at least 50 characters")
    if not env.ALLOWED_HOSTS:
        problems.append("ALLOWED_HOSTS: list the public host names")
    if not env.PUBLIC_BASE_URL.startswith("https://"):
        problems.append("PUBLIC_BASE_URL: must be an https:// URL")
    for integration, variables in EMBEDDED_DEFAULTS.items():
        problems.append(f"{variables}: required in production (embedded {integration} default in use)")
    if env.TELEGRAM_BOT_TOKEN and not env.TG_WEBHOOK_SECRET:
        problems.append("TG_WEBHOOK_SECRET: required with TELEGRAM_BOT_TOKEN")
    if env.USE_VERTEX_AI and not (env.GOOGLE_CLOUD_PROJECT or env.GEMINI_API_KEY):
        # Иначе процесс стартует, а каждая генерация падает на создании клиента Vertex
        problems.append("GOOGLE_CLOUD_PROJECT or GEMINI_API_KEY: required with USE_VERTEX_AI=true")
    if not env.METRICS_TOKEN:
        problems.append("METRICS_TOKEN: required to protect /metrics")
    if env.LAVA_ENABLED and not env.LAVA_API_KEY:
        problems.append("LAVA_API_KEY: required with LAVA_ENABLED=true")
    if env.LAVA_ENABLED and not (
        env.LAVA_WEBHOOK_API_KEY or (env.LAVA_WEBHOOK_USER and env.LAVA_WEBHOOK_PASSWORD)
    ):
        problems.append(
            "LAVA_WEBHOOK_API_KEY or LAVA_WEBHOOK_USER/LAVA_WEBHOOK_PASSWORD: required with LAVA_ENABLED=true"
        )
    return problems


_problems = unsafe_production_settings()
if _problems:
    raise ImproperlyConfigured("Unsafe production configuration:\n  " + "\n  ".join(_problems))
