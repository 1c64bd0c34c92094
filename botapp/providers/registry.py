"""Выбор провайдера генерации: офлайн при GEMINI_OFFLINE, иначе Gemini. Один экземпляр на процесс."""

from __future__ import annotations

import os
import threading
from typing import Any

from django.conf import settings
from django.core.signals import setting_changed
from django.dispatch import receiver

from botapp.providers.base import GenerationProvider

_lock = threading.Lock()
# pid в ключе: клиент, созданный до fork (prefork Celery), в дочернем процессе не используем
_cached: tuple[int, GenerationProvider] | None = None

_RELEVANT_SETTINGS = {
    "GEMINI_OFFLINE",
    "GEMINI_OFFLINE_LATENCY_S",
    "GEMINI_API_KEY",
    "GEMINI_API_BASE_URL",
    "USE_VERTEX_AI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_APPLICATION_CREDENTIALS_JSON",
}


def generation_provider() -> GenerationProvider:
    """Провайдер для текущего процесса; создаётся лениво (после fork воркера)."""
    global _cached
    pid = os.getpid()
    with _lock:
        if _cached is None or _cached[0] != pid:
            _cached = (pid, _build())
        return _cached[1]


def reset_generation_provider() -> None:
    """Забыть экземпляр (тесты, смена настроек)."""
    global _cached
    with _lock:
        _cached = None


def _build() -> GenerationProvider:
    if settings.GEMINI_OFFLINE:
        from botapp.providers.offline import OfflineProvider

        return OfflineProvider()
    # SDK импортируем только когда он действительно нужен
    from botapp.providers.gemini import GeminiProvider

    return GeminiProvider.from_settings()


@receiver(setting_changed)
def _on_setting_changed(*, setting: str, **kwargs: Any) -> None:
    # override_settings в тестах должен менять провайдера, а не оставлять старый из кэша
    if setting in _RELEVANT_SETTINGS:
        reset_generation_provider()
