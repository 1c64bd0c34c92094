"""Файлы эмулятора: хранение, идентификаторы в духе Telegram, размеры картинок без Pillow."""

from __future__ import annotations

import mimetypes
import secrets
import struct
from typing import Any

from botapp.sandbox.models import SandboxFile

MB = 1024 * 1024
PHOTO_UPLOAD_MAX = 10 * MB
UPLOAD_MAX = 50 * MB
DOWNLOAD_MAX = 20 * MB
URL_PHOTO_MAX = 5 * MB
URL_FILE_MAX = 20 * MB

# Префиксы file_id по виду — как у настоящих (по ним видно, что это за файл)
_ID_PREFIX = {
    "photo": "AgACAgIAAxkBAAI",
    "video": "BAACAgIAAxkBAAI",
    "document": "BQACAgIAAxkBAAI",
    "animation": "CgACAgIAAxkBAAI",
    "audio": "CQACAgIAAxkBAAI",
    "voice": "AwACAgIAAxkBAAI",
}
_FOLDER = {
    "photo": "photos",
    "video": "videos",
    "document": "documents",
    "animation": "animations",
    "audio": "music",
    "voice": "voice",
}
_IMAGE_MAGIC = (
    (b"\x89PNG\r\n\x1a\n", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF87a", "image/gif"),
    (b"GIF89a", "image/gif"),
    (b"BM", "image/bmp"),
)


def image_mime(data: bytes) -> str | None:
    for magic, mime in _IMAGE_MAGIC:
        if data.startswith(magic):
            return mime
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None


def image_size(data: bytes) -> tuple[int, int] | None:
    """Ширина и высота PNG/JPEG/GIF/BMP/WebP по заголовку."""
    mime = image_mime(data)
    try:
        if mime == "image/png" and data[12:16] == b"IHDR":
            width, height = struct.unpack(">II", data[16:24])
            return int(width), int(height)
        if mime == "image/gif":
            width, height = struct.unpack("<HH", data[6:10])
            return int(width), int(height)
        if mime == "image/bmp":
            width, height = struct.unpack("<ii", data[18:26])
            return abs(int(width)), abs(int(height))
        if mime == "image/jpeg":
            return _jpeg_size(data)
        if mime == "image/webp":
            return _webp_size(data)
    except struct.error:
        return None
    return None


def _jpeg_size(data: bytes) -> tuple[int, int] | None:
    i = 2
    while i + 9 < len(data):
        if data[i] != 0xFF:
            i += 1
            continue
        marker = data[i + 1]
        if marker in (0xD8, 0x01) or 0xD0 <= marker <= 0xD7:
            i += 2
            continue
        (length,) = struct.unpack(">H", data[i + 2 : i + 4])
        # SOF0..SOF15, кроме DHT/JPG/DAC
        if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
            height, width = struct.unpack(">HH", data[i + 5 : i + 9])
            return int(width), int(height)
        i += 2 + length
    return None


def _webp_size(data: bytes) -> tuple[int, int] | None:
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return width, height
    if chunk == b"VP8 ":
        width, height = struct.unpack("<HH", data[26:30])
        return int(width) & 0x3FFF, int(height) & 0x3FFF
    if chunk == b"VP8L":
        bits = int.from_bytes(data[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def guess_mime(file_name: str, fallback: str = "") -> str:
    guessed, _ = mimetypes.guess_type(file_name) if file_name else (None, None)
    if guessed:
        return guessed
    if fallback and fallback != "application/octet-stream":
        return fallback
    return "application/octet-stream"


def _extension(kind: str, file_name: str, mime_type: str) -> str:
    if kind == "photo":
        return "jpg"
    if "." in file_name and not file_name.endswith(".octet-stream"):
        return file_name.rsplit(".", 1)[1].lower()[:8]
    guessed = mimetypes.guess_extension(mime_type or "") or ".bin"
    return guessed.lstrip(".")


def file_store(
    *,
    data: bytes,
    kind: str,
    file_name: str = "",
    mime_type: str = "",
    origin: str = "bot",
    width: int | None = None,
    height: int | None = None,
) -> SandboxFile:
    unique = secrets.token_urlsafe(12)
    file_id = _ID_PREFIX.get(kind, "BQACAgIAAxkBAAI") + secrets.token_urlsafe(40)
    path = f"{_FOLDER.get(kind, 'documents')}/file_{unique}.{_extension(kind, file_name, mime_type)}"
    return SandboxFile.objects.create(
        file_id=file_id,
        file_unique_id="AQAD" + unique,
        kind=kind,
        file_path=path,
        file_name=file_name[:255],
        mime_type=mime_type[:128],
        size=len(data),
        width=width,
        height=height,
        origin=origin,
        content=data,
    )


def file_get(file_id: str) -> SandboxFile | None:
    return SandboxFile.objects.defer("content").filter(file_id=file_id).first()


def media_object(file: SandboxFile, kind: str, extra: dict[str, Any] | None = None) -> Any:
    """Поле Message для файла: photo — список PhotoSize, остальное — объект."""
    base: dict[str, Any] = {
        "file_id": file.file_id,
        "file_unique_id": file.file_unique_id,
        "file_size": file.size,
    }
    if kind == "photo":
        return [{**base, "width": file.width or 0, "height": file.height or 0}]
    if file.file_name:
        base["file_name"] = file.file_name
    if file.mime_type:
        base["mime_type"] = file.mime_type
    if kind in ("video", "animation"):
        base.update({"width": file.width or 0, "height": file.height or 0, "duration": 0})
    if kind in ("audio", "voice"):
        base["duration"] = 0
    base.update(extra or {})
    return base
