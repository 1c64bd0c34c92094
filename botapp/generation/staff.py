"""Действия персонала над заданиями (админка и панель): возврат холда, повторная доставка, перезапуск."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from django.db import transaction
from django.utils import timezone

from botapp.billing import ledger
from botapp.billing.audit import audit_record
from botapp.generation import jobs
from botapp.models import GenerationJob, JobStatus
from botapp.models.generation import ACTIVE_STATUSES


class StaffActionRefused(Exception):
    """Действие к заданию неприменимо; текст — для сообщения персоналу."""


def _refuse_while_delivering(job: GenerationJob) -> None:
    """Аренда доставки действует: результат отправляет её держатель."""
    if job.status == JobStatus.GENERATED and job.lease_until and job.lease_until > timezone.now():
        raise StaffActionRefused(f"job {job.pk} is being delivered (lease until {job.lease_until:%H:%M:%S})")


def job_release_stuck(*, job: GenerationJob, actor: Any) -> None:
    """Вернуть холд зависшего задания. Выполняющееся с живой арендой не трогаем: воркер ещё доставит."""
    now = timezone.now()
    if job.is_terminal:
        raise StaffActionRefused(f"job {job.pk} is already {job.status}")
    if (
        job.status == JobStatus.RUNNING
        and job.lease_until
        and job.lease_until > now
        and not job.operation_name
    ):
        raise StaffActionRefused(f"job {job.pk} is running (lease until {job.lease_until:%H:%M:%S})")
    # Результат сейчас доставляется (или ждёт повтора после 429): возврат холда прислал бы
    # «не вышло, токены возвращены» рядом с самим результатом
    _refuse_while_delivering(job)
    if job.status == JobStatus.GENERATED:
        raise StaffActionRefused(f"job {job.pk} has a result: redeliver it instead")
    # Только из очереди или выполнения — условием в базе: ставшее GENERATED после чтения доставляется
    if not jobs.job_fail(
        job=job,
        category="staff_release",
        message=f"released by {actor}",
        from_statuses=jobs.NOT_GENERATED,
    ):
        raise StaffActionRefused(f"job {job.pk} has moved on meanwhile; reload it")
    audit_record(actor=actor, action="job.release", target=job, details={"price": job.price})


def job_redeliver(*, job: GenerationJob, actor: Any) -> str:
    """Не доставленное — доставить; доставленное — прислать снова по file_id (бесплатно)."""
    from botapp.tasks import generation as tasks

    if job.status == JobStatus.GENERATED:
        # Копия задачи не получила бы аренду доставки: честно говорим, когда доставка решится
        _refuse_while_delivering(job)
        tasks.deliver_job.delay(job.pk)
        outcome = "delivery queued"
    elif job.status == JobStatus.DELIVERED:
        tasks.resend_job.delay(job.pk)
        outcome = "resend queued"
    else:
        raise StaffActionRefused(f"job {job.pk} has no result ({job.status})")
    audit_record(actor=actor, action="job.redeliver", target=job, details={"outcome": outcome})
    return outcome


@dataclass(frozen=True)
class Rerun:
    """Итог перезапуска; replayed — эта форма уже перезапускала задание, нового не создано."""

    job: GenerationJob
    replayed: bool


def job_rerun(*, job: GenerationJob, actor: Any, nonce: str = "") -> Rerun:
    """Перезапустить как новое задание за счёт сервиса: компенсация цены и задание — одной транзакцией.

    Отказ (модель выключена, пауза, потолок расходов) откатывает и компенсацию: бесплатных
    токенов у пользователя не остаётся. Компенсируется цена нового задания (прайс мог измениться).
    nonce — одноразовый ключ формы панели: повтор той же формы (двойной клик) возвращает уже
    созданное задание без второй компенсации. У действия админки nonce нет: от двойной отправки
    там защищает отказ, пока прежний перезапуск этого задания не завершён.
    Raises: StaffActionRefused — задание ещё не завершено, уже перезапущено или отказ создания.
    """
    request = {
        "model": job.model,
        "prompt": job.prompt,
        "params": job.params,
    }
    try:
        with transaction.atomic():
            # Замок на исходное задание: перезапуски одного задания идут по очереди и видят друг друга
            source = GenerationJob.objects.select_for_update().get(pk=job.pk)
            key = f"rerun:{job.pk}:{nonce}"
            if nonce and (done := GenerationJob.objects.filter(idempotency_key=key).first()) is not None:
                return Rerun(job=done, replayed=True)
            # Незавершённое ещё может дать результат: перезапуск заплатил бы за ту же работу дважды
            if not source.is_terminal:
                raise StaffActionRefused(f"job {job.pk} is still {source.status}: re-run only a finished job")
            active = (
                GenerationJob.objects.filter(source_job=source, status__in=ACTIVE_STATUSES)
                .order_by("pk")
                .first()
            )
            if active is not None:
                raise StaffActionRefused(
                    f"job {job.pk} is already re-run as #{active.pk} ({active.status}): wait for it to finish"
                )
            if not nonce:
                attempt = GenerationJob.objects.filter(idempotency_key__startswith=f"rerun:{job.pk}:").count()
                key = f"rerun:{job.pk}:{attempt + 1}"
            price = jobs.job_validate(**request, references=len(job.reference_file_ids))
            ledger.adjust(
                user=job.user,
                amount=price,
                actor=actor,
                reason=f"re-run of job {job.pk} by staff",
                key=f"{key}:compensation",
            )
            new_job, created = jobs.job_create(
                **request,
                user=job.user,
                reference_file_ids=list(job.reference_file_ids),
                idempotency_key=key,
                source_job=job,
                status_chat_id=job.user.telegram_id,
            )
    except jobs.JobRefused as refused:
        raise StaffActionRefused(f"job {job.pk} cannot be re-run: {refused.code}") from refused
    if created:
        audit_record(actor=actor, action="job.rerun", target=job, details={"new_job": new_job.pk})
    return Rerun(job=new_job, replayed=not created)
