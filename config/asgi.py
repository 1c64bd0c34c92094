"""Точка входа ASGI (gunicorn + uvicorn_worker.UvicornWorker)."""

import os

from config import runtime

runtime.mark_asgi()
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings.base")

from django.core.asgi import get_asgi_application  # noqa: E402

from botapp.http.asgi import BodySizeLimitMiddleware  # noqa: E402

django_application = get_asgi_application()

from botapp.http.static import StaticFilesASGI  # noqa: E402 — после django.setup()

# Статика (WhiteNoise) и лимит тела — на уровне ASGI, до Django
application = BodySizeLimitMiddleware(StaticFilesASGI(django_application))  # type: ignore[arg-type]
