"""Срок хранения медиа: старые файлы удаляются из хранилища, file_id Telegram остаются."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from botapp.generation import jobs, retention
from botapp.models import GenerationJob, GenerationModel, JobOutput, JobStatus, TelegramUser
from botapp.providers.base import MediaKind
from botapp.providers.storage import media_storage
from botapp.tests.billing.factories import balance, user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fake_supabase import FakeSupabase

pytestmark = pytest.mark.django_db


def test_outputs_older_than_the_retention_period_lose_their_files(tmp_path: Path) -> None:
    with override_settings(MEDIA_ROOT=tmp_path, MEDIA_STORAGE_BACKEND="local", MEDIA_RETENTION_DAYS=30):
        user = user_make()
        user_fund(user, 100)
        job = image_job_make(user, key="old", prompt="old")
        jobs.job_fail(job=job, category="test")
        storage = media_storage()
        for index, age in ((0, 31), (1, 1)):
            key = f"jobs/{job.pk}/{index}.png"
            storage.put(kind="image", key=key, data=b"\x89PNG fake", content_type="image/png")
            output = JobOutput.objects.create(
                job=job, index=index, status="ok", storage_key=key, photo_file_id=f"file-{index}"
            )
            JobOutput.objects.filter(pk=output.pk).update(created_at=timezone.now() - timedelta(days=age))
        assert retention.media_retention_sweep() == 1
        old, fresh = JobOutput.objects.order_by("index")
        assert old.storage_key == ""
        assert old.photo_file_id == "file-0"  # галерея по file_id продолжает работать
        assert fresh.storage_key
        assert not list(tmp_path.rglob("0.png"))
        assert list(tmp_path.rglob("1.png"))


def test_delete_me_cancels_queued_jobs_and_erases_running_ones_once_they_finish(tmp_path: Path) -> None:
    """/delete_me во время генерации: очередь — отмена с возвратом; начатое — стереть после завершения."""
    with override_settings(MEDIA_ROOT=tmp_path, MEDIA_STORAGE_BACKEND="local"):
        user = user_make()
        user_fund(user, 100)
        queued, running = (
            image_job_make(user, key="q", prompt="a secret garden", refs=["ref-file"]),
            image_job_make(user, key="r", prompt="a secret garden", refs=["ref-file"]),
        )
        claimed = jobs.job_claim(job_id=running.pk)
        assert isinstance(claimed, GenerationJob)
        jobs.job_mark_provider_started(job=claimed)
        retention.user_media_erase(user=user)
        assert GenerationJob.objects.get(pk=queued.pk).status == JobStatus.CANCELLED
        assert balance(user) == (86, 14)  # холд начатого остался: его доделают и спишут
        # Начатое задание доделано уже после /delete_me: файл сохранён, результат отправлен
        key = f"jobs/{claimed.pk}/0.png"
        media_storage().put(kind="image", key=key, data=b"\x89PNG fake", content_type="image/png")
        JobOutput.objects.create(job=claimed, index=0, status="ok", storage_key=key, photo_file_id="f-0")
        assert retention.erased_users_sweep() == 0  # ещё в работе: не трогаем
        jobs.job_fail(job=claimed, category="test")
        assert retention.erased_users_sweep() == 1
        output = JobOutput.objects.get(job=claimed)
        assert (output.storage_key, output.photo_file_id) == ("", "")
        assert not list(tmp_path.rglob("0.png"))
        job = GenerationJob.objects.get(pk=claimed.pk)
        assert (job.prompt, job.reference_file_ids) == ("", [])
        assert retention.erased_users_sweep() == 0
        # Новые задания после /delete_me — обычные данные пользователя, их не стираем
        fresh = image_job_make(user, key="after", prompt="a secret garden")
        assert GenerationJob.objects.get(pk=fresh.pk).prompt == "a secret garden"
        jobs.job_fail(job=fresh, category="test")
        assert retention.erased_users_sweep() == 0
        assert GenerationJob.objects.get(pk=fresh.pk).prompt == "a secret garden"


def _video_job(user: TelegramUser, *, key: str, prompt: str, negative: str) -> GenerationJob:
    """Видео с негативным промптом, как из карточки (кнопка «➖ Избегать…»)."""
    model = GenerationModel.objects.get(slug="veo-3-1-fast")
    duration, resolution, aspect = model.video_options[0]
    job, _created = jobs.job_create(
        user=user,
        model=model,
        prompt=prompt,
        params={
            "duration": duration,
            "resolution": resolution,
            "aspect_ratio": aspect,
            "negative_prompt": negative,
        },
        reference_file_ids=[],
        idempotency_key=key,
    )
    return job


def test_delete_me_erases_the_video_negative_prompt_of_finished_and_running_jobs() -> None:
    """Негативный промпт — текст пользователя в params: /delete_me и досрочная чистка стирают и его."""
    user = user_make()
    user_fund(user, 1000)
    finished = _video_job(user, key="done", prompt="a secret garden", negative="my neighbour's face")
    jobs.job_fail(job=finished, category="test")
    # Видео без текста запроса (только негативный): кроме негативного промпта стирать в нём нечего
    running = _video_job(user, key="run", prompt="", negative="my neighbour's face")
    claimed = jobs.job_claim(job_id=running.pk)
    assert isinstance(claimed, GenerationJob)
    jobs.job_mark_provider_started(job=claimed)
    retention.user_media_erase(user=user)
    finished.refresh_from_db()
    assert finished.prompt == ""
    assert "negative_prompt" not in finished.params
    assert finished.params["duration"]  # настройки задания остаются для учёта и статистики
    assert GenerationJob.objects.get(pk=running.pk).params["negative_prompt"]  # ещё в работе
    jobs.job_fail(job=claimed, category="test")
    retention.erased_users_sweep()
    assert "negative_prompt" not in GenerationJob.objects.get(pk=running.pk).params


@pytest.mark.django_db(transaction=True)
def test_a_storage_failure_for_images_does_not_keep_the_video_files(supabase: FakeSupabase) -> None:
    """Картинки и видео — разные корзины: сбой удаления одной не оставляет файлы другой."""
    user = user_make()
    user_fund(user, 1000)
    image, video = image_job_make(user, key="i"), _video_job(user, key="v", prompt="a garden", negative="")
    storage = media_storage()
    files: list[tuple[GenerationJob, MediaKind, str]] = [
        (image, "image", f"jobs/{image.pk}/0.png"),
        (video, "video", f"jobs/{video.pk}/0.mp4"),
    ]
    for job, kind, key in files:
        jobs.job_fail(job=job, category="test")
        storage.put(
            kind=kind, key=key, data=b"\x00fake", content_type="image/png" if kind == "image" else "video/mp4"
        )
        JobOutput.objects.create(job=job, index=0, status="ok", storage_key=key)
    supabase.fail_next(503)  # первым удаляются картинки — их корзина не отвечает
    assert retention.user_media_erase(user=user) == 1
    assert [r.status for r in supabase.calls("DELETE")] == [503, 200]
    assert JobOutput.objects.get(job=video).storage_key == ""
    assert JobOutput.objects.get(job=image).storage_key == f"jobs/{image.pk}/0.png"
    # Хранилище ожило: сборщик удаляет оставшуюся картинку
    assert retention.erased_users_sweep() == 1
    assert not JobOutput.objects.exclude(storage_key="").exists()
