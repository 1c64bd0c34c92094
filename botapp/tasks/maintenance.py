"""Обслуживающие задачи (очередь maintenance)."""

from __future__ import annotations

import os

from celery import shared_task
from django.utils import timezone

from botapp.models import PipelineProbe
from botapp.ops import heartbeats


@shared_task(name="maintenance.beat_tick", ignore_result=True)
def beat_tick() -> None:
    """По расписанию beat: отмечает, что задачи beat доходят до воркера."""
    heartbeats.heartbeat_record(component=heartbeats.BEAT_TASK, pid=os.getpid())


@shared_task(name="maintenance.complete_probe", ignore_result=True)
def complete_probe(probe_id: int) -> None:
    """Проба конвейера: отметить выполнение в PostgreSQL; повтор ничего не меняет."""
    PipelineProbe.objects.filter(pk=probe_id, completed_at__isnull=True).update(
        completed_at=timezone.now(), worker_pid=os.getpid()
    )


@shared_task(name="maintenance.inbox_prune", ignore_result=True)
def inbox_prune() -> None:
    """По расписанию: удалить записи входящего ящика старше 48 ч."""
    from botapp.telegram.inbox import inbox_prune as prune

    prune()


@shared_task(name="maintenance.media_retention", ignore_result=True)
def media_retention() -> None:
    """Раз в час: файлы результатов старше MEDIA_RETENTION_DAYS; задания, доделанные после /delete_me."""
    from botapp.generation.retention import erased_users_sweep, media_retention_sweep

    try:
        media_retention_sweep()
    finally:
        # Стирание после /delete_me — обещание пользователю: сбой срока хранения его не пропускает
        erased_users_sweep()


@shared_task(name="maintenance.queue_status", ignore_result=True)
def queue_status() -> None:
    """По расписанию: место и ETA в статусах заданий, ждущих в очереди."""
    from botapp.generation.progress import queue_refresh

    queue_refresh()
