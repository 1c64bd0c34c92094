"""Офлайн-провайдер для локального запуска без ключа: настоящие PNG и MP4, явно помеченные OFFLINE.

Состояние видео-операции целиком в её имени (время создания и параметры), поэтому опрос
работает из любого процесса без памяти и БД. В production офлайн запрещён конфигурацией.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import os
import tempfile
import textwrap
import time
from functools import cache, lru_cache
from pathlib import Path
from typing import Any

import imageio_ffmpeg
from django.conf import settings
from PIL import Image, ImageDraw, ImageFont

from botapp.providers.base import ImageOutput, ProviderPermanentError, ReferenceImage, VideoPoll

OPERATION_PREFIX = "offline/operations/"
# Имя операции хранится в GenerationJob.operation_name (max_length=200)
MAX_OPERATION_NAME = 200
SIZE_TIERS = {"512": 512, "0.5K": 512, "1K": 1024, "2K": 2048, "4K": 4096}
VIDEO_LONG_SIDE = 320
VIDEO_FPS = 8
FONT_CANDIDATES = (
    # Кириллица нужна: встроенный шрифт Pillow её не рисует
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/TTF/DejaVuSans.ttf",
    "/usr/share/fonts/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
    "/System/Library/Fonts/Supplemental/Arial Unicode.ttf",
)

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont


def image_dimensions(aspect_ratio: str, image_size: str) -> tuple[int, int]:
    """Длинная сторона по уровню (1K = 1024), короткая — по соотношению."""
    try:
        w, h = (float(part) for part in aspect_ratio.split(":"))
    except ValueError as exc:
        raise ProviderPermanentError(f"соотношение {aspect_ratio!r}", category="invalid_request") from exc
    if w <= 0 or h <= 0:
        raise ProviderPermanentError(f"соотношение {aspect_ratio!r}", category="invalid_request")
    long_side = SIZE_TIERS.get(image_size or "1K", 1024)
    if w >= h:
        return long_side, max(1, round(long_side * h / w))
    return max(1, round(long_side * w / h)), long_side


@cache
def _font(size: int) -> Font:
    for path in FONT_CANDIDATES:
        if Path(path).exists():
            return ImageFont.truetype(path, size)
    return ImageFont.load_default(size)


# Палитра картинки: 252 оттенка градиента + цвета надписей (индексы ниже)
GRADIENT_SHADES = 252
WHITE, BLACK, RED = 252, 253, 254


@lru_cache(maxsize=4)  # 4K — 16 МБ: держим только ходовые форматы
def _shades(width: int, height: int) -> Image.Image:
    """Индексы палитры градиента на размер: одни на формат, запрос меняет лишь палитру."""
    mask = Image.linear_gradient("L").resize((width, height))
    shades = mask.point([v * (GRADIENT_SHADES - 1) // 255 for v in range(256)])
    return Image.frombytes("P", shades.size, shades.tobytes())


def _background(width: int, height: int, seed: str) -> Image.Image:
    """Градиент по хэшу промпта в палитре: разные запросы различимы глазом; быстро даже для 4K.

    Палитровый PNG (байт на пиксель) кодируется втрое быстрее RGB: офлайн-провайдер — часть
    стенда нагрузочных замеров, и его время не должно заслонять сам конвейер.
    """
    digest = hashlib.sha256(seed.encode()).digest()
    dark = (digest[0] // 3, digest[1] // 3, digest[2] // 3)
    light = (128 + digest[3] // 2, 128 + digest[4] // 2, 128 + digest[5] // 2)
    image = _shades(width, height).copy()
    palette: list[int] = []
    for i in range(GRADIENT_SHADES):
        palette += [
            low + (high - low) * i // (GRADIENT_SHADES - 1) for low, high in zip(dark, light, strict=True)
        ]
    palette += [255, 255, 255, 0, 0, 0, 200, 0, 0, 128, 128, 128]
    image.putpalette(palette)
    return image


def _inks(image: Image.Image) -> dict[str, Any]:
    """Цвета надписей для режима картинки: индексы палитры или RGB."""
    if image.mode == "P":
        return {"white": WHITE, "black": BLACK, "red": RED}
    return {"white": "white", "black": "black", "red": (200, 0, 0)}


def _draw_caption(image: Image.Image, lines: list[str], *, prompt: str) -> None:
    """Красная плашка OFFLINE, под ней тёмная полоса с параметрами и промптом.

    Белое по тёмной полосе читается на любом фоне без обводки букв: обводка втрое дороже
    самого текста, а офлайн-рендер входит в замеры конвейера.
    """
    draw = ImageDraw.Draw(image)
    ink = _inks(image)
    unit = max(10, min(image.size) // 16)
    margin = unit // 2
    draw.rectangle((0, 0, image.width, unit * 3), fill=ink["red"])
    draw.text((margin, unit // 2), "OFFLINE", font=_font(unit * 2), fill=ink["white"])
    small, text = _font(max(8, unit // 2)), _font(unit)
    wrapped = textwrap.wrap(prompt, max(8, int(image.width / (unit * 0.6))))[:6]
    line_small, line_text = unit * 2 // 3, unit + unit // 4
    y = unit * 3
    band = 2 * margin + len(lines) * line_small + len(wrapped) * line_text
    draw.rectangle((0, y, image.width, y + band), fill=ink["black"])
    y += margin
    for line in lines:
        draw.text((margin, y), line, font=small, fill=ink["white"])
        y += line_small
    for line in wrapped:
        draw.text((margin, y), line, font=text, fill=ink["white"])
        y += line_text


class OfflineProvider:
    """GenerationProvider без сети: для make run, демо и тестов верхних слоёв."""

    def __init__(self, *, latency_s: float | None = None) -> None:
        self._latency_s = latency_s

    @property
    def latency_s(self) -> float:
        if self._latency_s is not None:
            return self._latency_s
        return float(getattr(settings, "GEMINI_OFFLINE_LATENCY_S", 0.0) or 0.0)

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
        width, height = image_dimensions(aspect_ratio, image_size)
        if self.latency_s:
            time.sleep(min(self.latency_s, timeout_s))
        image = _background(width, height, prompt)
        if references:
            # Миниатюры входных фото — в полном цвете
            image = image.convert("RGB")
        _draw_caption(
            image,
            [f"{model_id} · {aspect_ratio} · {image_size or '1K'} · {width}×{height}"],
            prompt=prompt,
        )
        self._paste_thumbnails(image, references)
        out = io.BytesIO()
        # compress_level=1: 4K кодируется за доли секунды, размер не важен
        image.save(out, "PNG", compress_level=1)
        return ImageOutput(
            data=out.getvalue(), mime_type="image/png", width=width, height=height, offline=True
        )

    @staticmethod
    def _paste_thumbnails(image: Image.Image, references: list[ReferenceImage]) -> None:
        side = max(16, min(image.size) // 5)
        x = side // 8
        for ref in references:
            try:
                thumb: Image.Image = Image.open(io.BytesIO(ref.data))
                thumb = thumb.convert("RGB")
            except OSError:
                thumb = Image.new("RGB", (side, side), "gray")
            thumb.thumbnail((side, side))
            y = image.height - thumb.height - side // 8
            image.paste(thumb, (x, y))
            ImageDraw.Draw(image).rectangle(
                (x, y, x + thumb.width, y + thumb.height), outline="white", width=2
            )
            x += thumb.width + side // 8
            if x + side > image.width:
                break

    # -------------------------------------------------------------------------------------
    # Видео: имя операции = время создания + параметры

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
        image_dimensions(aspect_ratio, "1K")  # та же проверка соотношения, что и для картинок
        created_ms = int(time.time() * 1000)
        params: dict[str, object] = {
            "d": int(duration_s),
            "r": resolution,
            "a": aspect_ratio,
            "m": model_id,
            "i": int(image is not None),
            "p": prompt,
        }
        while True:
            payload = base64.urlsafe_b64encode(
                json.dumps(params, ensure_ascii=False, separators=(",", ":")).encode()
            ).decode()
            name = f"{OPERATION_PREFIX}{created_ms}-{payload.rstrip('=')}"
            if len(name) <= MAX_OPERATION_NAME or not params["p"]:
                return name
            # Промпт в имени — только для подписи на видео; укорачиваем до лимита колонки
            params["p"] = str(params["p"])[:-8]

    def poll_video(self, *, operation_name: str, timeout_s: float) -> VideoPoll:
        created_ms, params = parse_operation_name(operation_name)
        ready_at = created_ms / 1000 + self.latency_s
        if time.time() < ready_at:
            return VideoPoll(done=False, meta={"operation": operation_name, "ready_at": ready_at})
        data = render_video(
            prompt=str(params.get("p", "")),
            duration_s=int(str(params.get("d", 4))),
            aspect_ratio=str(params.get("a", "16:9")),
            caption=f"{params.get('m', '')} · {params.get('r', '')} · {params.get('a', '')}",
        )
        return VideoPoll(done=True, data=data, meta={"operation": operation_name, "offline": True})


def parse_operation_name(operation_name: str) -> tuple[int, dict[str, object]]:
    if not operation_name.startswith(OPERATION_PREFIX):
        raise ProviderPermanentError(f"не офлайн-операция: {operation_name}", category="invalid_request")
    try:
        created, payload = operation_name.removeprefix(OPERATION_PREFIX).split("-", 1)
        raw = base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4))
        params = json.loads(raw)
        return int(created), dict(params)
    except (ValueError, binascii.Error, UnicodeDecodeError) as exc:
        raise ProviderPermanentError(
            f"битое имя операции: {operation_name}", category="invalid_request"
        ) from exc


def video_dimensions(aspect_ratio: str) -> tuple[int, int]:
    """Маленькое видео с чётными сторонами (yuv420p требует чётных)."""
    width, height = image_dimensions(aspect_ratio, "1K")
    scale = VIDEO_LONG_SIDE / max(width, height)
    return max(2, round(width * scale / 2) * 2), max(2, round(height * scale / 2) * 2)


def render_video(*, prompt: str, duration_s: int, aspect_ratio: str, caption: str = "") -> bytes:
    """Настоящий MP4 (H.264, faststart) нужной длительности: надпись и бегущий квадрат."""
    width, height = video_dimensions(aspect_ratio)
    # Кадры ffmpeg ждёт в RGB
    base = _background(width, height, prompt).convert("RGB")
    _draw_caption(base, [caption] if caption else [], prompt=prompt)
    frames = max(1, min(int(duration_s), 8)) * VIDEO_FPS
    fd, name = tempfile.mkstemp(suffix=".mp4")
    os.close(fd)
    try:
        writer = imageio_ffmpeg.write_frames(
            name,
            (width, height),
            fps=VIDEO_FPS,
            codec="libx264",
            macro_block_size=2,
            quality=None,
            output_params=["-preset", "ultrafast", "-movflags", "+faststart"],
        )
        writer.send(None)  # запуск генератора ffmpeg
        box = max(8, min(width, height) // 8)
        for index in range(frames):
            frame = base.copy()
            x = int((width - box) * index / max(1, frames - 1))
            ImageDraw.Draw(frame).rectangle((x, height - box - 4, x + box, height - 4), fill=(255, 220, 0))
            writer.send(frame.tobytes())
        writer.close()
        return Path(name).read_bytes()
    finally:
        Path(name).unlink(missing_ok=True)
