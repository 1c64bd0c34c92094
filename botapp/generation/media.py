"""Медиа задания: входные фото (наша копия или getFile) и фото для sendPhoto под лимиты Telegram."""

from __future__ import annotations

import io
import re
from typing import Any

from PIL import Image
from telegram.error import BadRequest, NetworkError, TelegramError
from telegram.ext import ExtBot

from botapp.providers.base import ProviderPermanentError, ProviderTransientError, ReferenceImage

# Telegram: фото ≤10 МБ, сумма сторон ≤10000; берём с запасом
PHOTO_MAX_BYTES = 9_500_000
PHOTO_MAX_SIDE_SUM = 10_000
PHOTO_MAX_RATIO = 20  # Telegram: отношение сторон фото не больше 20
STORED_PREFIX = "out:"  # ссылка на наш сохранённый результат вместо file_id
STORED_KEY = re.compile(r"jobs/(?P<job>\d+)/(?P<index>\d+)\.\w+")  # runner.output_key


def _delivered_photo(key: str) -> str | None:
    """file_id фото, которым доставлен сохранённый результат с ключом jobs/<задание>/<выход>.<расширение>."""
    from botapp.models import JobOutput

    match = STORED_KEY.fullmatch(key)
    if match is None:
        return None
    photo = (
        JobOutput.objects.filter(job_id=int(match["job"]), index=int(match["index"]))
        .values_list("photo_file_id", flat=True)
        .first()
    )
    return photo or None


def reference_load(*, file_id: str) -> ReferenceImage:
    """Байты входного изображения: наша копия результата или файл из Telegram (getFile ≤20 МБ)."""
    if file_id.startswith(STORED_PREFIX):
        from botapp.providers.storage import StorageNotFoundError, media_storage

        key = file_id.removeprefix(STORED_PREFIX)
        try:
            data = media_storage().get(kind="image", key=key)
        except StorageNotFoundError:
            # Копию убрал срок хранения, пока ссылка ждала («🔁 Ещё раз» под правкой, очередь), а фото
            # в Telegram живёт дольше — берём его, как output_ref после срока
            delivered = _delivered_photo(key)
            if delivered is None:
                raise
            file_id = delivered
        else:
            return ReferenceImage(data=data, mime_type="image/png" if key.endswith(".png") else "image/jpeg")
    from botapp.telegram.outbound import bot_call

    async def download(bot: ExtBot[Any]) -> bytes:
        file = await bot.get_file(file_id)
        return bytes(await file.download_as_bytearray())

    try:
        data = bot_call(download)
    except BadRequest as exc:
        raise ProviderPermanentError(f"reference unavailable: {exc}", category="invalid_request") from exc
    except (NetworkError, TelegramError) as exc:
        raise ProviderTransientError(f"reference download failed: {exc}") from exc
    mime = "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else "image/jpeg"
    return ReferenceImage(data=data, mime_type=mime)


def photo_payload(data: bytes, *, force_jpeg: bool = False) -> bytes:
    """Что отправить sendPhoto: сам файл, если Telegram его примет как фото, иначе JPEG под лимиты.

    Оригинал в пределах лимитов фото уходит как есть (сжимает его Telegram): перекодирование
    стоило бы воркеру десятки миллисекунд на каждую картинку. Оригинал пользователь получает
    документом (настройка), так что превью — только для больших результатов (Pro 4K).
    force_jpeg — повтор после отказа Telegram принять оригинал (необычный PNG: 16 бит, прозрачность).
    """
    image: Image.Image = Image.open(io.BytesIO(data))
    if (
        not force_jpeg
        and len(data) <= PHOTO_MAX_BYTES
        and image.format in ("PNG", "JPEG")
        and image.width + image.height <= PHOTO_MAX_SIDE_SUM
        and max(image.width, image.height) <= PHOTO_MAX_RATIO * min(image.width, image.height)
    ):
        return data
    image = image.convert("RGB")
    if image.width + image.height > PHOTO_MAX_SIDE_SUM:
        scale = PHOTO_MAX_SIDE_SUM / (image.width + image.height)
        image = image.resize((int(image.width * scale), int(image.height * scale)))
    quality = 92
    while True:
        buffer = io.BytesIO()
        image.save(buffer, format="JPEG", quality=quality, optimize=True)
        if buffer.tell() <= PHOTO_MAX_BYTES or quality <= 40:
            if buffer.tell() > PHOTO_MAX_BYTES:
                image = image.resize((image.width // 2, image.height // 2))
                continue
            return buffer.getvalue()
        quality -= 12
