"""Сообщения при старте процесса."""

from __future__ import annotations

import logging

from django.conf import settings

logger = logging.getLogger("botapp.startup")
_logged = False


def log_embedded_defaults() -> None:
    """Один раз на процесс назвать встроенные замены и переменные, которые их отключают."""
    global _logged
    if _logged:
        return
    _logged = True
    for integration, variables in settings.EMBEDDED_DEFAULTS.items():
        logger.info("embedded default in use: %s (set %s to use the real one)", integration, variables)


def ensure_local_dirs() -> None:
    """Встроенные замены хранят данные в DATA_DIR: папки должны быть до первого обращения."""
    from pathlib import Path

    folders = [Path(settings.MEDIA_ROOT)]
    if settings.CELERY_BROKER_URL.startswith("filesystem"):
        options = settings.CELERY_BROKER_TRANSPORT_OPTIONS
        folders += [
            Path(str(options[key])) for key in ("data_folder_in", "processed_folder", "control_folder")
        ]
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
