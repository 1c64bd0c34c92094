"""Хранилище отказывает при сохранении результата: задание решается сразу, а не висит до конца аренды.

Стадия генерации — в процессе теста (runner), но против локальных Gemini и Supabase по настоящим
протоколам: что сохранено, видно в подделке хранилища, что заплачено провайдеру — в подделке Gemini.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.utils import timezone

from botapp.generation import jobs, retention, runner
from botapp.models import (
    ChatLogEntry,
    ErrorEvent,
    GenerationJob,
    GenerationModel,
    JobOutput,
    JobStatus,
    LedgerTransaction,
    TelegramUser,
)
from botapp.providers.storage import media_storage
from botapp.tests.billing.factories import balance, user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support import processes
from botapp.tests.support.fake_gemini import FakeGemini, render_png
from botapp.tests.support.fake_supabase import FakeSupabase, fake_service_key
from botapp.tests.telegram.test_chat_paths import Chat

pytestmark = pytest.mark.django_db


def _settlements(job: GenerationJob) -> list[str]:
    return list(
        LedgerTransaction.objects.filter(
            reference_type="botapp.hold", reference_id=str(job.hold_id), kind__in=("capture", "release")
        ).values_list("kind", flat=True)
    )


def test_a_storage_that_refuses_the_image_fails_the_job_at_once(
    gemini: FakeGemini, supabase: FakeSupabase
) -> None:
    user = user_make()
    user_fund(user, 100)
    job = image_job_make(user, prompt="a copper kettle")
    supabase.fail_next(403)  # бакет закрыт политикой: повтор не поможет
    assert runner.job_run(job_id=job.pk).outcome == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_category) == (JobStatus.FAILED, "storage_error")
    assert _settlements(job) == ["release"]
    assert balance(user) == (100, 0)
    assert not supabase.objects
    # Провайдеру заплачено один раз: задание не осталось running, перегенерации не будет
    assert len(gemini.requests_to(":generateContent")) == 1
    assert job.lease_until is None


def _video_polled_when_ready(gemini: FakeGemini) -> GenerationJob:
    """Видео-задание, операция Veo отправлена и уже готова; следующий опрос — сейчас."""
    user = user_make()
    user_fund(user, 300)
    model = GenerationModel.objects.get(slug="veo-3-1-fast")
    duration, resolution, aspect = model.video_options[0]
    job, _created = jobs.job_create(
        user=user,
        model=model,
        prompt="tide over rocks",
        params={"duration": duration, "resolution": resolution, "aspect_ratio": aspect},
        reference_file_ids=[],
        idempotency_key="video",
    )
    assert runner.job_run(job_id=job.pk).outcome == "polling"
    GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    return job


def test_a_storage_hiccup_after_the_video_is_ready_is_retried_by_the_next_poll(
    gemini: FakeGemini, supabase: FakeSupabase
) -> None:
    job = _video_polled_when_ready(gemini)
    supabase.fail_next(503)
    assert runner.job_poll(job_id=job.pk).outcome == "polling"
    job.refresh_from_db()
    assert job.status == JobStatus.RUNNING
    assert job.next_poll_at is not None
    assert job.next_poll_at > timezone.now()
    GenerationJob.objects.filter(pk=job.pk).update(next_poll_at=timezone.now() - timedelta(seconds=1))
    assert runner.job_poll(job_id=job.pk).outcome == "generated"
    assert ("videos", f"jobs/{job.pk}/0.mp4") in supabase.objects
    assert JobOutput.objects.get(job=job).status == JobOutput.Status.OK
    # Операция Veo не отправлялась заново
    assert len(gemini.requests_to(":predictLongRunning")) == 1
    jobs.job_fail(job=job, category="test")


def test_a_storage_that_refuses_the_video_fails_the_job_at_once(
    gemini: FakeGemini, supabase: FakeSupabase
) -> None:
    job = _video_polled_when_ready(gemini)
    supabase.fail_next(403)
    assert runner.job_poll(job_id=job.pk).outcome == "failed"
    job.refresh_from_db()
    assert (job.status, job.error_category) == (JobStatus.FAILED, "storage_error")
    assert _settlements(job) == ["release"]
    assert balance(job.user) == (300, 0)
    assert len(gemini.requests_to(":predictLongRunning")) == 1


# --- /delete_me при недоступном хранилище ---------------------------------------------------------


@pytest.fixture(scope="module")
def supabase_web(
    django_db_setup: Any, django_db_blocker: Any, logs_dir: Path
) -> Iterator[tuple[str, FakeSupabase]]:
    """Веб в режиме песочницы, чьё хранилище медиа — локальный Supabase (как в production)."""
    key = fake_service_key()
    port = processes.free_port()
    with FakeSupabase(key) as fake:
        env = processes.django_env(
            TELEGRAM_SANDBOX="true",
            PORT=str(port),
            TELEGRAM_API_BASE_URL=f"http://127.0.0.1:{port}/sandbox/api",
            SUPABASE_URL=fake.base_url,
            SUPABASE_SERVICE_ROLE_KEY=key,
            SUPABASE_BUCKET="images",
            SUPABASE_VIDEO_BUCKET="videos",
        )
        with (
            django_db_blocker.unblock(),
            processes.web_server(env, logs_dir / "storage-faults-web.log", port=port) as base,
        ):
            yield base, fake


@pytest.mark.django_db(transaction=True)
def test_delete_me_with_storage_down_still_erases_the_data_and_the_sweep_deletes_the_file(
    supabase_web: tuple[str, FakeSupabase], settings: Any
) -> None:
    base, fake = supabase_web
    fake.serve_media(settings)
    chat = Chat(base, "en")
    chat.say("/start")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    user_fund(user, 100)
    # Завершённое задание с результатом в хранилище
    job = image_job_make(user, prompt="a secret garden")
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    key = f"jobs/{job.pk}/0.png"
    media_storage().put(kind="image", key=key, data=render_png(64, 64, "garden"), content_type="image/png")
    JobOutput.objects.create(job=job, index=0, status="ok", storage_key=key, photo_file_id="f-0")
    jobs.job_fail(job=claimed, category="test")
    [confirm] = chat.say("/delete_me")
    fake.fail_next(503)  # шлюз Supabase лежит ровно в момент удаления
    chat.press(confirm, "del:yes")
    [remove] = fake.calls("DELETE")
    assert remove.status == 503
    # Пользователь получил подтверждение, а не извинение: личное стёрто, хотя файл ещё лежит
    confirm.refresh_from_db()
    assert confirm.text.startswith("Your data has been deleted.")
    assert not any(m.text.startswith("Sorry, something went wrong") for m in chat.bot_messages())
    assert not ErrorEvent.objects.exists()
    user.refresh_from_db()
    assert (user.first_name, user.language) == ("", "")
    assert not ChatLogEntry.objects.filter(user=user).exists()
    job.refresh_from_db()
    assert job.prompt == ""
    output = JobOutput.objects.get(job=job)
    assert output.photo_file_id == ""
    # Ключ остался: по нему сборщик удалит файл, когда хранилище оживёт
    assert output.storage_key == key
    assert ("images", key) in fake.objects
    assert retention.erased_users_sweep() == 1
    assert ("images", key) not in fake.objects
    assert JobOutput.objects.get(job=job).storage_key == ""
    assert retention.erased_users_sweep() == 0
