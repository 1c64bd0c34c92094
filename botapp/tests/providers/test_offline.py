"""Офлайн-провайдер: настоящие PNG и MP4, состояние операции — в её имени."""

from __future__ import annotations

import io
import time
from pathlib import Path

import imageio_ffmpeg
import pytest
from PIL import Image

from botapp.providers.base import ImageOutput, ProviderPermanentError, ReferenceImage
from botapp.providers.offline import MAX_OPERATION_NAME, OfflineProvider


def image(
    provider: OfflineProvider, aspect_ratio: str, image_size: str, refs: list[ReferenceImage]
) -> ImageOutput:
    return provider.generate_image(
        model_id="gemini-3.1-flash-image-preview",
        prompt="Кот в шляпе на Луне",
        references=refs,
        aspect_ratio=aspect_ratio,
        image_size=image_size,
        timeout_s=10,
    )


@pytest.mark.parametrize(
    ("aspect_ratio", "image_size", "size"),
    [("16:9", "1K", (1024, 576)), ("9:16", "2K", (1152, 2048)), ("1:1", "1K", (1024, 1024))],
)
def test_it_draws_a_png_of_the_requested_ratio_and_tier(
    aspect_ratio: str, image_size: str, size: tuple[int, int]
) -> None:
    result = image(OfflineProvider(latency_s=0), aspect_ratio, image_size, [])

    assert Image.open(io.BytesIO(result.data)).size == size
    assert (result.width, result.height, result.offline) == (*size, True)
    assert result.data.startswith(b"\x89PNG")


def test_reference_thumbnails_change_the_picture() -> None:
    out = io.BytesIO()
    Image.new("RGB", (200, 200), (255, 0, 255)).save(out, "PNG")
    ref = ReferenceImage(out.getvalue(), "image/png")
    provider = OfflineProvider(latency_s=0)

    plain = Image.open(io.BytesIO(image(provider, "1:1", "1K", []).data))
    with_ref = Image.open(io.BytesIO(image(provider, "1:1", "1K", [ref]).data))

    corner = (60, 1024 - 60)
    assert with_ref.convert("RGB").getpixel(corner) == (255, 0, 255)
    assert plain.convert("RGB").getpixel(corner) != (255, 0, 255)


def submit(provider: OfflineProvider, prompt: str = "Закат над морем") -> str:
    return provider.submit_video(
        model_id="veo-3.1-lite-generate-preview",
        prompt=prompt,
        image=None,
        duration_s=4,
        resolution="720p",
        aspect_ratio="16:9",
        negative_prompt="",
        timeout_s=10,
    )


def test_it_renders_a_playable_mp4_of_the_requested_duration(tmp_path: Path) -> None:
    provider = OfflineProvider(latency_s=0)

    poll = provider.poll_video(operation_name=submit(provider), timeout_s=10)

    assert poll.done
    assert poll.data is not None
    assert poll.data[4:8] == b"ftyp"
    path = tmp_path / "video.mp4"
    path.write_bytes(poll.data)
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    frames = sum(1 for _ in reader)
    assert meta["size"] == (320, 180)
    assert frames == 4 * meta["fps"]


def test_the_operation_completes_after_the_latency_in_any_process() -> None:
    name = submit(OfflineProvider(latency_s=0.3))

    # Новый экземпляр — как другой процесс: всё нужное в имени операции
    assert OfflineProvider(latency_s=0.3).poll_video(operation_name=name, timeout_s=10).done is False
    time.sleep(0.35)
    assert OfflineProvider(latency_s=0.3).poll_video(operation_name=name, timeout_s=10).done is True


def test_a_long_prompt_still_fits_the_operation_name_column() -> None:
    name = submit(OfflineProvider(latency_s=0), prompt="Очень длинное описание сцены " * 40)

    assert name.startswith("offline/operations/")
    assert len(name) <= MAX_OPERATION_NAME


def test_a_foreign_operation_name_is_permanent() -> None:
    with pytest.raises(ProviderPermanentError):
        OfflineProvider(latency_s=0).poll_video(operation_name="models/veo/operations/x", timeout_s=1)
