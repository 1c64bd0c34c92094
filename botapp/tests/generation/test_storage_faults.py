"""Хранилище отказывает при сохранении результата: задание решается сразу, а не висит до конца аренды.

Стадия генерации — в процессе теста (runner), но против локальных Gemini и Supabase по настоящим
протоколам: что сохранено, видно в подделке хранилища, что заплачено провайдеру — в подделке Gemini.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from botapp.generation import jobs, runner
from botapp.models import GenerationJob, GenerationModel, JobOutput, JobStatus, LedgerTransaction
from botapp.tests.billing.factories import balance, user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fake_gemini import FakeGemini
from botapp.tests.support.fake_supabase import FakeSupabase

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
