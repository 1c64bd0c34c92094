"""Точка входа ASGI (gunicorn + uvicorn_worker.UvicornWorker)."""

import gc
import os

from config import runtime

runtime.mark_asgi()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

from django.core.asgi import get_asgi_application  # noqa: E402

from botapp.http.asgi import BodySizeLimitMiddleware  # noqa: E402

django_application = get_asgi_application()

from django.conf import settings  # noqa: E402

from botapp.http.lean import LeanASGIHandler, PathDispatcher  # noqa: E402
from botapp.http.static import StaticFilesASGI  # noqa: E402 — после django.setup()
from botapp.telegram.application import warm_up  # noqa: E402
from botapp.telegram.webhook import webhook_app  # noqa: E402


async def freeze_startup_objects() -> None:
    """Всё, что создано при старте, живёт до конца процесса: полная сборка мусора их больше не обходит.

    Без этого каждая сборка старшего поколения — ~150 тыс. объектов Django и PTB, пауза
    ~140 мс посреди апдейтов (хвост задержки); вызывается и при импорте, и после прогрева.
    """
    gc.collect()
    gc.freeze()


# Статика (WhiteNoise), лимит тела, вебхук без Django и «лёгкие» пути (health) — на уровне ASGI
application = BodySizeLimitMiddleware(
    StaticFilesASGI(
        PathDispatcher(
            full=django_application,
            lean=LeanASGIHandler(),
            exact={"/telegram/webhook/": webhook_app},
            on_startup=(warm_up, freeze_startup_objects),
        )
    ),
    # Эмулятор Bot API в песочнице принимает файлы до 50 МБ, как Telegram
    path_limits={"/sandbox/api/": 51 * 1024 * 1024} if settings.TELEGRAM_SANDBOX else None,
)

gc.collect()
gc.freeze()
