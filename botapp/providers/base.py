"""Общий контракт адаптеров генерации и хранилища: простые dataclass и только наши исключения.

Ядро (botapp/generation) видит только это; SDK (google-genai, supabase) импортируют
лишь модули адаптеров.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol


class ProviderError(Exception):
    """База ошибок провайдера; category — понятная пользователю причина (для текста и статистики)."""

    category = "provider_error"

    def __init__(
        self, message: str, *, category: str | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message)
        if category is not None:
            self.category = category
        self.retry_after = retry_after


class ProviderTransientError(ProviderError):
    """429/500/502/503/504, таймаут, обрыв соединения: повторить с паузой (в пределах срока задания)."""

    category = "provider_unavailable"


class ProviderPermanentError(ProviderError):
    """400/403, заблокированный запрос или результат, пустой ответ: не повторять.

    Категории: safety (запрос или результат заблокирован), no_image (модель не вернула картинку),
    invalid_request (400), forbidden (403, ключ/квота), video_filtered (видео отфильтровано).
    """

    category = "invalid_request"


@dataclass(frozen=True)
class ReferenceImage:
    data: bytes
    mime_type: str


@dataclass(frozen=True)
class ImageOutput:
    data: bytes
    mime_type: str
    width: int
    height: int
    offline: bool = False


@dataclass(frozen=True)
class VideoPoll:
    """Итог опроса операции Veo: done=False — ещё идёт; done=True — data или ProviderError при получении."""

    done: bool
    data: bytes | None = None
    mime_type: str = "video/mp4"
    meta: dict[str, object] = field(default_factory=dict)


class GenerationProvider(Protocol):
    def generate_image(
        self,
        *,
        model_id: str,
        prompt: str,
        references: list[ReferenceImage],
        aspect_ratio: str,
        image_size: str,
        timeout_s: float,
    ) -> ImageOutput:
        """Одна картинка за вызов (1–4 выхода = 1–4 вызова). Raises ProviderTransientError/PermanentError."""
        ...

    def submit_video(
        self,
        *,
        model_id: str,
        prompt: str,
        image: ReferenceImage | None,
        duration_s: int,
        resolution: str,
        aspect_ratio: str,
        negative_prompt: str,
        timeout_s: float,
    ) -> str:
        """Запустить долгую операцию Veo; вернуть имя операции (сохранить сразу же)."""
        ...

    def poll_video(self, *, operation_name: str, timeout_s: float) -> VideoPoll:
        """Опросить операцию; готовое видео скачать. Отфильтрованное — ProviderPermanentError."""
        ...


MediaKind = Literal["image", "video"]


class MediaStorage(Protocol):
    def put(self, *, kind: MediaKind, key: str, data: bytes, content_type: str) -> None:
        """Сохранить по детерминированному ключу; «уже существует» при повторе — успех."""
        ...

    def get(self, *, kind: MediaKind, key: str) -> bytes: ...

    def signed_url(self, *, kind: MediaKind, key: str, expires_s: int) -> str: ...

    def signed_urls(self, *, kind: MediaKind, keys: list[str], expires_s: int) -> dict[str, str]:
        """Ссылки пачкой (ключ → ссылка); ключей, которых нет в хранилище, в ответе может не быть."""
        ...

    def delete(self, *, kind: MediaKind, keys: list[str]) -> None:
        """Удалить (отсутствующие ключи — не ошибка)."""
        ...
