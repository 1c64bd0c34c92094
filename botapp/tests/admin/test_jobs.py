"""Админка заданий: список и карточка открываются, действия идут через сервисы и аудит."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.utils import timezone

from botapp.generation import jobs
from botapp.models import GenerationJob, GenerationModel, JobStatus, LedgerTransaction, StaffAuditLog
from botapp.tests.admin.conftest import changelist, messages_of, run_action
from botapp.tests.billing.factories import balance, user_fund, user_make
from botapp.tests.generation.factories import image_job_make

pytestmark = pytest.mark.django_db


def _job(user: object, key: str = "k") -> GenerationJob:
    return image_job_make(user, key=key)  # type: ignore[arg-type]


def test_the_job_list_and_page_open_with_filters(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    response = client_staff.get(changelist("generationjob"), {"status": "queued"})
    assert response.status_code == 200
    assert str(job.pk) in response.content.decode()
    assert client_staff.get(f"/admin/botapp/generationjob/{job.pk}/change/").status_code == 200
    jobs.job_fail(job=job, category="test")


def test_release_a_stuck_hold_returns_the_tokens_and_is_audited(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, lease_until=timezone.now() - timedelta(minutes=5)
    )
    response = run_action(client_staff, "generationjob", "release_stuck_hold", [job.pk])
    assert "Холды возвращены: 1." in messages_of(response)
    assert GenerationJob.objects.get().status == JobStatus.FAILED
    assert balance(user) == (100, 0)
    assert StaffAuditLog.objects.filter(action="job.release").count() == 1


def test_a_job_running_with_a_live_lease_is_not_released(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    jobs.job_claim(job_id=job.pk)
    response = run_action(client_staff, "generationjob", "release_stuck_hold", [job.pk])
    assert any("is running" in message for message in messages_of(response))
    assert balance(user) == (86, 14)
    jobs.job_fail(job=job, category="test")


def test_a_result_being_delivered_is_neither_released_nor_delivered_twice(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    claimed = jobs.job_claim(job_id=job.pk)
    assert isinstance(claimed, GenerationJob)
    # Переход в GENERATED взял аренду доставки: результат сейчас отправляется
    assert jobs.job_mark_generated(job=claimed)
    response = run_action(client_staff, "generationjob", "release_stuck_hold", [job.pk])
    assert any("is being delivered" in message for message in messages_of(response))
    assert balance(user) == (86, 14)
    # Копия доставки не получила бы аренду: персонал видит, до какого времени идёт доставка
    response = run_action(client_staff, "generationjob", "redeliver", [job.pk])
    assert any("is being delivered" in message for message in messages_of(response))
    assert not StaffAuditLog.objects.filter(action__in=("job.release", "job.redeliver")).exists()
    jobs.job_fail(job=job, category="test")


def test_rerun_compensates_the_price_and_creates_a_new_job(client_staff: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    jobs.job_fail(job=job, category="safety")
    run_action(client_staff, "generationjob", "rerun", [job.pk])
    new_job = GenerationJob.objects.exclude(pk=job.pk).get()
    assert new_job.source_job_id == job.pk
    assert balance(user) == (100, 14)  # компенсация цены + холд нового задания
    assert (
        LedgerTransaction.objects.filter(kind="adjustment", reason__startswith="re-run of job").count() == 1
    )
    jobs.job_fail(job=new_job, category="test")


def test_a_refused_rerun_leaves_no_compensation_behind(client_staff: Client) -> None:
    """Модель выключили: перезапуск отказан понятным сообщением, компенсация откатилась вместе с ним."""
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    jobs.job_fail(job=job, category="safety")
    GenerationModel.objects.filter(slug="nano-banana-2").update(is_enabled=False)
    response = run_action(client_staff, "generationjob", "rerun", [job.pk])
    assert response.status_code == 200
    assert any("cannot be re-run: model_disabled" in message for message in messages_of(response))
    assert GenerationJob.objects.count() == 1
    assert balance(user) == (100, 0)
    assert not LedgerTransaction.objects.filter(reason__startswith="re-run of job").exists()


def test_a_rerun_of_an_unfinished_job_is_refused(client_staff: Client) -> None:
    """В очереди, выполняется или сгенерировано — результат ещё может прийти: перезапуск отказан."""
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    jobs.job_claim(job_id=job.pk)
    response = run_action(client_staff, "generationjob", "rerun", [job.pk])
    assert any("is still running" in message for message in messages_of(response))
    assert GenerationJob.objects.count() == 1
    assert balance(user) == (86, 14)
    assert not LedgerTransaction.objects.filter(reason__startswith="re-run of job").exists()
    jobs.job_fail(job=job, category="test")


def test_the_rerun_action_sent_again_while_the_rerun_is_active_does_nothing(client_staff: Client) -> None:
    """У действия админки нет nonce: повторная отправка, пока новое задание не завершено, — отказ."""
    user = user_make()
    user_fund(user, 100)
    job = _job(user)
    jobs.job_fail(job=job, category="safety")
    run_action(client_staff, "generationjob", "rerun", [job.pk])
    response = run_action(client_staff, "generationjob", "rerun", [job.pk])
    new_job = GenerationJob.objects.get(source_job=job)
    assert any(f"already re-run as #{new_job.pk}" in message for message in messages_of(response))
    assert balance(user) == (100, 14)
    assert LedgerTransaction.objects.filter(reason__startswith="re-run of job").count() == 1
    jobs.job_fail(job=new_job, category="test")
