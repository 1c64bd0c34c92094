"""Подпись готового видео — на языке пользователя, как и карточка: «8 с», а не «8 s» по-русски."""

from __future__ import annotations

import pytest

from botapp.generation import delivery, jobs
from botapp.models import GenerationJob, GenerationModel, TelegramUser
from botapp.providers.storage import media_storage
from botapp.sandbox import services
from botapp.tests.billing.factories import user_fund
from botapp.tests.telegram.test_chat_paths import LANGUAGES, Chat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _generated_video(user: TelegramUser) -> GenerationJob:
    """Видео Veo 8 с готово и лежит в хранилище; аренда доставки взята переходом в GENERATED."""
    job, _created = jobs.job_create(
        user=user,
        model=GenerationModel.objects.get(slug="veo-3-1-fast"),
        prompt="waves at sunset",
        params={"duration": 8, "resolution": "720p", "aspect_ratio": "16:9"},
        reference_file_ids=[],
        idempotency_key="caption-video",
    )
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    key = f"jobs/{job.pk}/0.mp4"
    media_storage().put(
        kind="video", key=key, data=b"\x00\x00\x00\x18ftypmp42" + b"\0" * 64, content_type="video/mp4"
    )
    jobs.job_output_store(
        job=claimed, index=0, status="ok", storage_key=key, mime_type="video/mp4", size_bytes=80
    )
    assert jobs.job_mark_generated(job=claimed)
    return job


@pytest.mark.parametrize("language", LANGUAGES)
def test_the_video_caption_uses_the_users_language(sandbox_bot_api: str, language: str) -> None:
    chat = Chat(sandbox_bot_api, language)
    chat.say("/start")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    user_fund(user, 500)
    job = _generated_video(user)
    assert delivery.job_deliver(job_id=job.pk, claimed=True).outcome == "delivered"
    [video] = services.sandbox_calls(method="sendVideo", chat_id=chat.chat_id)
    details = chat.expected("{duration} s · {resolution} · {ratio}").format(
        duration=8, resolution="720p", ratio="16:9"
    )
    assert details in video.params["caption"]
    assert ("8 с" in video.params["caption"]) == (language == "ru")
