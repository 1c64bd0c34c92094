"""Стадия генерации в пределах времени задачи и числа попыток: готовые выходы не выбрасываются.

Стадия — в процессе теста (runner), против локального Gemini по настоящему протоколу: сколько
заплачено провайдеру, видно по запросам в подделке.
"""

from __future__ import annotations

from typing import Any

import pytest

from botapp.generation import jobs, runner
from botapp.models import GenerationJob, JobOutput, JobStatus
from botapp.providers.storage import media_storage
from botapp.tests.billing.factories import user_fund, user_make
from botapp.tests.generation.factories import image_job_make
from botapp.tests.support.fake_gemini import FakeGemini, render_png

pytestmark = pytest.mark.django_db


def _ready(job: GenerationJob) -> list[int]:
    ready = JobOutput.objects.filter(job=job, status=JobOutput.Status.OK)
    return sorted(ready.values_list("index", flat=True))


def test_outputs_that_would_cross_the_task_time_limit_continue_in_a_new_task(
    gemini: FakeGemini, settings: Any
) -> None:
    # Мягкий лимит 5 с, вызов до 2 с, ответ — за 1.5 с: третий вызов мог бы пересечь лимит
    settings.CELERY_TASK_SOFT_TIME_LIMIT = 5
    settings.GENERATION_CALL_TIMEOUT_S = 2
    user = user_make()
    user_fund(user, 100)
    job = image_job_make(user, prompt="a lighthouse at dusk [slow:1.5]", outputs=3)

    assert runner.job_run(job_id=job.pk).outcome == "requeued"
    job.refresh_from_db()
    assert (job.status, job.lease_until) == (JobStatus.QUEUED, None)
    assert _ready(job) == [0, 1]
    assert len(gemini.requests_to(":generateContent")) == 2

    # Следующая задача продолжает с третьего выхода: готовое провайдеру не заказывается снова
    assert runner.job_run(job_id=job.pk).outcome == "generated"
    job.refresh_from_db()
    assert job.status == JobStatus.GENERATED
    assert _ready(job) == [0, 1, 2]
    assert len(gemini.requests_to(":generateContent")) == 3
    jobs.job_fail(job=job, category="test")


def test_when_retries_run_out_the_outputs_already_made_are_delivered(
    gemini: FakeGemini, settings: Any
) -> None:
    settings.GENERATION_MAX_ATTEMPTS = 2
    user = user_make()
    user_fund(user, 100)
    job = image_job_make(user, prompt="two gulls over a pier [500]", outputs=2)
    # Первый выход получила прошлая попытка; второй провайдер не отдаёт (500), попытка — последняя
    key = f"jobs/{job.pk}/0.png"
    png = render_png(64, 64, "gull")
    media_storage().put(kind="image", key=key, data=png, content_type="image/png")
    jobs.job_output_store(
        job=job,
        index=0,
        status=JobOutput.Status.OK,
        storage_key=key,
        mime_type="image/png",
        width=64,
        height=64,
        size_bytes=len(png),
    )
    GenerationJob.objects.filter(pk=job.pk).update(attempts=1)

    assert runner.job_run(job_id=job.pk).outcome == "generated"
    job.refresh_from_db()
    # Готовый выход доставляется и оплачивается долей цены, а не выбрасывается с возвратом всего
    assert job.status == JobStatus.GENERATED
    assert _ready(job) == [0]
    assert jobs.job_charge(job=job, delivered=1) == -(-job.price // 2)
    assert gemini.requests_to(":generateContent")
    jobs.job_fail(job=job, category="test")
