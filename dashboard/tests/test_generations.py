"""Панель: генерации — фильтры, миниатюры, действия через botapp.generation.staff с аудитом."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.contrib.auth.models import Permission, User
from django.test import Client
from django.utils import timezone

from botapp.generation import jobs
from botapp.models import (
    GenerationJob,
    GenerationModel,
    JobOutput,
    JobStatus,
    LedgerTransaction,
    StaffAuditLog,
    TelegramUser,
)
from botapp.tests.admin.conftest import form_nonce, verified_client
from botapp.tests.billing.factories import balance, user_fund, user_make

pytestmark = pytest.mark.django_db


@pytest.fixture
def client_money() -> Client:
    cashier = User.objects.create_user("mila", password="pw", is_staff=True)  # pragma: allowlist secret
    cashier.user_permissions.add(Permission.objects.get(codename="add_ledgertransaction"))
    return verified_client(cashier)


def _job(user: TelegramUser, key: str, prompt: str = "a cat") -> GenerationJob:
    job, _ = jobs.job_create(
        user=user,
        model=GenerationModel.objects.get(slug="nano-banana-2"),
        prompt=prompt,
        params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1},
        reference_file_ids=[],
        idempotency_key=key,
    )
    return job


def _messages(response: object) -> list[str]:
    return [str(m) for m in response.context["messages"]]  # type: ignore[attr-defined]


def test_filters_narrow_the_list_and_show_prompt_and_thumbnail(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    failed = _job(user, "f", prompt="a failed dragon")
    jobs.job_fail(job=failed, category="safety")
    done = _job(user, "d", prompt="a delivered sunset")
    JobOutput.objects.create(job=done, index=0, status="ok", storage_key=f"jobs/{done.pk}/0.png")
    page = client_money.get("/dashboard/generations/", {"error_category": "safety"}).content.decode()
    assert "a failed dragon" in page
    assert "a delivered sunset" not in page
    page = client_money.get(
        "/dashboard/generations/", {"status": "queued", "user": str(user.telegram_id)}
    ).content.decode()
    assert "a delivered sunset" in page
    assert "a failed dragon" not in page
    assert "/media/s/" in page
    tomorrow = (timezone.localdate() + timedelta(days=1)).isoformat()
    page = client_money.get("/dashboard/generations/", {"date_from": tomorrow}).content.decode()
    assert "a delivered sunset" not in page
    # Сутки «по» включительно, в часовом поясе проекта: сегодняшнее задание — в «с сегодня по сегодня»
    today = timezone.localdate().isoformat()
    one_day = {"date_from": today, "date_to": today}
    page = client_money.get("/dashboard/generations/", one_day).content.decode()
    assert "a delivered sunset" in page
    yesterday = (timezone.localdate() - timedelta(days=1)).isoformat()
    page = client_money.get("/dashboard/generations/", {"date_to": yesterday}).content.decode()
    assert "a delivered sunset" not in page
    jobs.job_fail(job=done, category="test")


def test_release_a_stuck_hold_returns_the_tokens_and_is_audited(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "stuck")
    GenerationJob.objects.filter(pk=job.pk).update(
        status=JobStatus.RUNNING, lease_until=timezone.now() - timedelta(minutes=5)
    )
    response = client_money.post(f"/dashboard/generations/{job.pk}/release/", follow=True)
    assert any("возвращён" in m for m in _messages(response))
    assert GenerationJob.objects.get(pk=job.pk).status == JobStatus.FAILED
    assert balance(user) == (100, 0)
    assert StaffAuditLog.objects.filter(action="job.release", target_id=str(job.pk)).count() == 1


def test_redelivering_a_job_without_a_result_is_refused_with_a_reason(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "nothing")
    response = client_money.post(f"/dashboard/generations/{job.pk}/redeliver/", follow=True)
    assert any("has no result" in m for m in _messages(response))
    assert not StaffAuditLog.objects.filter(action="job.redeliver").exists()
    jobs.job_fail(job=job, category="test")


def test_rerun_submitted_twice_with_one_nonce_creates_one_job_and_one_compensation(
    client_money: Client,
) -> None:
    """Двойной клик по «Перезапустить»: одна форма — одно новое задание и одна компенсация."""
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "rerun-me")
    jobs.job_fail(job=job, category="safety")
    form = {"nonce": form_nonce(client_money, "/dashboard/generations/")}
    first = client_money.post(f"/dashboard/generations/{job.pk}/rerun/", form, follow=True)
    second = client_money.post(f"/dashboard/generations/{job.pk}/rerun/", form, follow=True)
    new_job = GenerationJob.objects.get(source_job=job)
    assert balance(user) == (100, 14)
    assert (
        LedgerTransaction.objects.filter(kind="adjustment", reason__startswith="re-run of job").count() == 1
    )
    assert StaffAuditLog.objects.filter(action="job.rerun", target_id=str(job.pk)).count() == 1
    assert any(f"перезапущено как #{new_job.pk} за счёт сервиса" in m for m in _messages(first))
    assert any("уже была отправлена" in m for m in _messages(second))
    jobs.job_fail(job=new_job, category="test")


def test_rerun_without_the_form_nonce_does_nothing(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "no-nonce")
    jobs.job_fail(job=job, category="safety")
    response = client_money.post(f"/dashboard/generations/{job.pk}/rerun/", follow=True)
    assert any("форма устарела" in m for m in _messages(response))
    assert not GenerationJob.objects.filter(source_job=job).exists()
    assert balance(user) == (100, 0)


def test_rerun_of_a_running_job_is_refused(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "still-running")
    jobs.job_claim(job_id=job.pk)
    form = {"nonce": form_nonce(client_money, "/dashboard/generations/")}
    response = client_money.post(f"/dashboard/generations/{job.pk}/rerun/", form, follow=True)
    assert any("is still running" in m for m in _messages(response))
    assert not GenerationJob.objects.filter(source_job=job).exists()
    assert not LedgerTransaction.objects.filter(reason__startswith="re-run of job").exists()
    jobs.job_fail(job=job, category="test")


def test_actions_need_the_money_permission_post_and_csrf(client_money: Client) -> None:
    user = user_make()
    user_fund(user, 100)
    job = _job(user, "guarded")
    plain = verified_client(
        User.objects.create_user("ivan", password="pw", is_staff=True)  # pragma: allowlist secret
    )  # pragma: allowlist secret
    assert plain.post(f"/dashboard/generations/{job.pk}/release/").status_code == 403
    assert client_money.get(f"/dashboard/generations/{job.pk}/release/").status_code == 405
    client_money.handler.enforce_csrf_checks = True
    assert client_money.post(f"/dashboard/generations/{job.pk}/release/").status_code == 403
    assert GenerationJob.objects.get(pk=job.pk).status == JobStatus.QUEUED
    jobs.job_fail(job=job, category="test")
