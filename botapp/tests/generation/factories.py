"""Задания для тестов: картинка Nano Banana 2 (1:1, 1K) с холдом цены, как из карточки."""

from __future__ import annotations

from typing import Any

from botapp.generation import jobs
from botapp.models import GenerationJob, GenerationModel, TelegramUser


def image_job_make(
    user: TelegramUser,
    *,
    key: str = "k1",
    prompt: str = "a cat",
    refs: list[str] | None = None,
    **params: Any,
) -> GenerationJob:
    job, _created = jobs.job_create(
        user=user,
        model=GenerationModel.objects.get(slug="nano-banana-2"),
        prompt=prompt,
        params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1, **params},
        reference_file_ids=list(refs or []),
        idempotency_key=key,
    )
    return job
