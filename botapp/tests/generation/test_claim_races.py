"""Захват заданий из нескольких ОС-процессов разом: лимит пользователя и «один захват» держит БД."""

from __future__ import annotations

import pytest
from django.conf import settings

from botapp.generation import jobs
from botapp.models import GenerationJob, GenerationModel, JobStatus
from botapp.tests.billing.factories import user_fund, user_make
from botapp.tests.support.parallel import run_in_processes

# Задания захватывают только процессы теста: в брокер они не попадают
pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    pytest.mark.usefixtures("jobs_unpublished"),
]

TARGET = "botapp.tests.generation.parallel_targets:claim"


def _jobs(count: int) -> list[GenerationJob]:
    user = user_make()
    user_fund(user, 1000)
    model = GenerationModel.objects.get(slug="nano-banana-2")
    return [
        jobs.job_create(
            user=user,
            model=model,
            prompt=f"a lantern {i}",
            params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1},
            reference_file_ids=[],
            idempotency_key=f"race-{i}",
        )[0]
        for i in range(count)
    ]


def test_six_processes_claiming_one_users_jobs_at_once_respect_the_in_flight_limit() -> None:
    limit = settings.GENERATION_MAX_IN_FLIGHT_PER_USER
    created = _jobs(limit + 4)
    outcomes = run_in_processes(TARGET, [{"job_id": job.pk} for job in created])
    assert outcomes.count("claimed") == limit
    assert outcomes.count(jobs.Claim.BUSY) == len(created) - limit
    assert GenerationJob.objects.filter(status=JobStatus.RUNNING).count() == limit


def test_four_processes_claiming_the_same_job_claim_it_once() -> None:
    [job] = _jobs(1)
    outcomes = run_in_processes(TARGET, [{"job_id": job.pk}] * 4)
    assert outcomes.count("claimed") == 1
    assert outcomes.count(jobs.Claim.TAKEN) == 3
    job.refresh_from_db()
    assert (job.status, job.attempts) == (JobStatus.RUNNING, 1)


def test_four_processes_delivering_the_same_result_get_one_delivery_lease() -> None:
    [job] = _jobs(1)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    assert jobs.job_mark_generated(job=claimed)
    # Доставщик умер: его аренда истекла, и четыре копии доставки (повтор, сборщик, персонал) спорят
    GenerationJob.objects.filter(pk=job.pk).update(lease_until=None)
    outcomes = run_in_processes(
        "botapp.tests.generation.parallel_targets:delivery_claim", [{"job_id": job.pk}] * 4
    )
    assert sorted(outcomes) == ["claimed", "taken", "taken", "taken"]
