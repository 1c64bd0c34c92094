"""Сборщик (maintenance.sweep_jobs): база — правда о заданиях, брокер может терять сообщения.

- в очереди дольше GENERATION_QUEUE_REPUBLISH_S — сообщение считается потерянным, публикуем снова;
- выполняется с истёкшей арендой (воркер умер) — назад в очередь и публикуем;
- опрос Veo просрочен — публикуем опрос (операцию никогда не отправляем заново);
- сгенерировано, но не доставлено, и аренда доставки истекла (доставщик умер, его повтор потерян) —
  публикуем доставку; пока аренда действует, доставляет её держатель, второй экземпляр не шлём;
  публикации не бесконечны: через DELIVERY_GIVE_UP_S после готовности доставка сдаётся сама;
- срок вышел — «просрочено» с возвратом холда.
Повторная публикация безопасна: захват задания условный, лишняя копия получит «занято».
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from botapp.generation import jobs
from botapp.models import GenerationJob, JobStatus
from botapp.models.generation import ACTIVE_STATUSES

logger = logging.getLogger(__name__)

BATCH = 500
# Запланированный повтор доставки приходит к истечению аренды: даём ему успеть первым
DELIVERY_GRACE_S = 5


@dataclass
class SweepReport:
    expired: int = 0
    republished: int = 0
    recovered: int = 0
    polls: int = 0
    deliveries: int = 0


def jobs_sweep() -> SweepReport:
    from botapp.tasks import generation as tasks

    now = timezone.now()
    report = SweepReport()
    for job in GenerationJob.objects.filter(status__in=ACTIVE_STATUSES, deadline__lte=now)[:BATCH]:
        # Сгенерированное, но не доставленное, доставляем даже после срока: оно уже оплачено провайдеру
        # Статус проверяет UPDATE: ставшее GENERATED после этого SELECT не просрочится
        if job.status != JobStatus.GENERATED and jobs.job_fail(
            job=job, category="deadline", status=JobStatus.EXPIRED, from_statuses=jobs.NOT_GENERATED
        ):
            report.expired += 1
    stale = now - timedelta(seconds=settings.GENERATION_QUEUE_REPUBLISH_S)
    for job_id in GenerationJob.objects.filter(
        Q(published_at__lt=stale) | Q(published_at__isnull=True), status=JobStatus.QUEUED, deadline__gt=now
    ).values_list("pk", flat=True)[:BATCH]:
        jobs.job_publish(job_id)
        report.republished += 1
    dead = GenerationJob.objects.filter(status=JobStatus.RUNNING, lease_until__lt=now, operation_name="")
    for job_id in dead.values_list("pk", flat=True)[:BATCH]:
        updated = GenerationJob.objects.filter(
            pk=job_id, status=JobStatus.RUNNING, lease_until__lt=now
        ).update(status=JobStatus.QUEUED, lease_until=None)
        if updated:
            jobs.job_publish(job_id)
            report.recovered += 1
    overdue = now - timedelta(seconds=settings.VIDEO_POLL_INTERVAL_S)
    for job_id in (
        GenerationJob.objects.filter(status=JobStatus.RUNNING, next_poll_at__lt=overdue)
        .exclude(operation_name="")
        .values_list("pk", flat=True)[:BATCH]
    ):
        tasks.poll_job.delay(job_id)
        report.polls += 1
    lapsed = Q(lease_until__lt=now - timedelta(seconds=DELIVERY_GRACE_S))
    undelivered = GenerationJob.objects.filter(
        lapsed | Q(lease_until__isnull=True, generated_at__lt=stale), status=JobStatus.GENERATED
    )
    notify = GenerationJob.objects.filter(
        lapsed | Q(lease_until__isnull=True),
        status__in=(JobStatus.FAILED, JobStatus.EXPIRED),
        notified_at__isnull=True,
        finished_at__lt=stale,
    )
    for job_id in [
        *undelivered.values_list("pk", flat=True)[:BATCH],
        *notify.values_list("pk", flat=True)[:BATCH],
    ]:
        tasks.deliver_job.delay(job_id)
        report.deliveries += 1
    if any(vars(report).values()):
        logger.warning("job sweep: %s", report)
    return report
