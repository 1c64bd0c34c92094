"""Лимиты Telegram, проверяемые до записи: длина текста и подписи, callback_data, размеры файлов."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from botapp.sandbox import files
from botapp.sandbox.entities import parse_text
from botapp.sandbox.errors import ApiError, bad_request
from botapp.sandbox.spec import Upload

if TYPE_CHECKING:
    from botapp.sandbox.methods import Request

TEXT_MAX = 4096
CAPTION_MAX = 1024
CALLBACK_DATA_MAX = 64
MEDIA_GROUP = (2, 10)
TEXT_METHODS = frozenset({"sendMessage", "editMessageText"})
# Поля InlineKeyboardButton, которые не задают действие кнопки
_BUTTON_DECOR = frozenset({"text", "icon_custom_emoji_id", "style"})
TOO_LARGE = ApiError(413, "Request Entity Too Large")


def _caption(text: str, parse_mode: str | None, entities: list[Any] | None) -> tuple[str, list[Any]]:
    parsed = parse_text(text, parse_mode, entities)
    if len(parsed[0]) > CAPTION_MAX:
        raise bad_request("message caption is too long")
    return parsed


def _check_inline_keyboard(markup: Any) -> None:
    if not isinstance(markup, dict) or "inline_keyboard" not in markup:
        return
    for row in markup["inline_keyboard"]:
        for button in row:
            data = button.get("callback_data")
            if data is not None and not 1 <= len(str(data).encode("utf-8")) <= CALLBACK_DATA_MAX:
                raise bad_request("BUTTON_DATA_INVALID")
            if not set(button) - _BUTTON_DECOR:
                raise bad_request(
                    "can't parse inline keyboard button: Text buttons are unallowed in the inline keyboard"
                )


def photo_dimensions(data: bytes) -> tuple[int, int]:
    """Фото должно быть картинкой: ≤10 МБ, ширина + высота ≤ 10000, стороны не больше 1:20."""
    if len(data) > files.PHOTO_UPLOAD_MAX:
        raise bad_request("PHOTO_SAVE_FILE_INVALID")
    size = files.image_size(data)
    if files.image_mime(data) is None or size is None:
        raise bad_request("IMAGE_PROCESS_FAILED")
    width, height = size
    if width <= 0 or height <= 0 or width + height > 10000 or max(width, height) / min(width, height) > 20:
        raise bad_request("PHOTO_INVALID_DIMENSIONS")
    return size


def _check_uploads(request: Request) -> None:
    if any(part.size > files.UPLOAD_MAX for part in request.uploads.values()):
        raise TOO_LARGE
    photos: list[Any] = []
    if request.method == "sendPhoto":
        photos.append(request.params.get("photo"))
    media = request.params.get("media")
    for item in media if isinstance(media, list) else [media] if isinstance(media, dict) else []:
        if item.get("type") == "photo":
            photos.append(item.get("media"))
    for photo in photos:
        upload: Upload | None = photo if isinstance(photo, Upload) else None
        if isinstance(photo, str) and photo.startswith("attach://"):
            upload = request.uploads.get(photo.removeprefix("attach://"))
        if upload is not None and upload.size > files.PHOTO_UPLOAD_MAX:
            raise bad_request("PHOTO_SAVE_FILE_INVALID")


def _check_media(request: Request) -> None:
    media = request.params.get("media")
    if request.method == "sendMediaGroup" and isinstance(media, list):
        if not MEDIA_GROUP[0] <= len(media) <= MEDIA_GROUP[1]:
            raise bad_request("wrong number of media in the album: must be 2-10")
        kinds = {item["type"] for item in media}
        for exclusive in ("document", "audio"):
            if exclusive in kinds and len(kinds) > 1:
                raise bad_request(f"{exclusive} can't be mixed with other media types")
    items = media if isinstance(media, list) else [media] if isinstance(media, dict) else []
    request.media_captions = [
        _caption(item["caption"], item.get("parse_mode"), item.get("caption_entities"))
        if item.get("caption")
        else None
        for item in items
    ]


def precheck(request: Request) -> None:
    """Проверки без обращения к состоянию: их проваливают до лимита частоты, как и у Telegram."""
    params = request.params
    _check_uploads(request)
    if request.method in TEXT_METHODS and "text" in params:
        text, entities = parse_text(params["text"], params.get("parse_mode"), params.get("entities"))
        if not text.strip():
            raise bad_request("message text is empty")
        if len(text) > TEXT_MAX:
            raise bad_request("message is too long")
        request.text = (text, entities)
    if params.get("caption"):
        request.caption = _caption(
            params["caption"], params.get("parse_mode"), params.get("caption_entities")
        )
    _check_media(request)
    _check_inline_keyboard(params.get("reply_markup"))
