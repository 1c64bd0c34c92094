"""Синхронизировать расписание django-celery-beat с объявленным в коде."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand
from django.db import transaction
from django_celery_beat.models import IntervalSchedule, PeriodicTask, PeriodicTasks

from botapp.tasks.schedule import periodic_tasks

# Задачи проекта помечены префиксом: чужие записи (созданные в админке) не трогаем
PREFIX = "nb: "


class Command(BaseCommand):
    help = "Create, update and disable periodic tasks to match botapp/tasks/schedule.py"

    def handle(self, *args: Any, **options: Any) -> None:
        declared = periodic_tasks()
        with transaction.atomic():
            names = set()
            for item in declared:
                interval, _ = IntervalSchedule.objects.get_or_create(
                    every=item.every_s, period=IntervalSchedule.SECONDS
                )
                name = PREFIX + item.name
                names.add(name)
                PeriodicTask.objects.update_or_create(
                    name=name,
                    defaults={
                        "task": item.task,
                        "interval": interval,
                        "queue": item.queue,
                        "enabled": True,
                        # Сообщение, не взятое за интервал, уже бесполезно — следующее придёт
                        "expires": None,
                        "expire_seconds": item.every_s * 2,
                    },
                )
            stale = PeriodicTask.objects.filter(name__startswith=PREFIX).exclude(name__in=names)
            disabled = stale.update(enabled=False)
            PeriodicTasks.update_changed()
        self.stdout.write(f"periodic tasks: {len(declared)} declared, {disabled} stale disabled")
