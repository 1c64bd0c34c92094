"""Расписание beat объявлено в коде и переносится в БД командой sync_periodic_tasks."""

from __future__ import annotations

from io import StringIO

import pytest
from django.core.management import call_command
from django_celery_beat.models import IntervalSchedule, PeriodicTask

from botapp.tasks.schedule import periodic_tasks

pytestmark = pytest.mark.django_db


def _sync() -> str:
    out = StringIO()
    call_command("sync_periodic_tasks", stdout=out)
    return out.getvalue()


def test_it_creates_every_declared_task_on_its_queue() -> None:
    _sync()
    for item in periodic_tasks():
        row = PeriodicTask.objects.get(name=f"nb: {item.name}")
        assert row.task == item.task
        assert row.queue == item.queue
        assert row.interval.every == item.every_s
        assert row.enabled


def test_it_is_idempotent_and_repairs_edited_rows() -> None:
    _sync()
    row = PeriodicTask.objects.get(name="nb: beat tick")
    row.task, row.enabled = "something.else", False
    row.save()
    _sync()
    _sync()
    row.refresh_from_db()
    assert row.task == "maintenance.beat_tick"
    assert row.enabled
    assert PeriodicTask.objects.filter(name__startswith="nb: ").count() == len(periodic_tasks())


def test_it_disables_tasks_no_longer_declared_but_leaves_foreign_ones() -> None:
    interval = IntervalSchedule.objects.create(every=5, period=IntervalSchedule.SECONDS)
    PeriodicTask.objects.create(name="nb: retired job", task="maintenance.retired", interval=interval)
    PeriodicTask.objects.create(name="made in admin", task="maintenance.custom", interval=interval)
    assert "1 stale disabled" in _sync()
    assert not PeriodicTask.objects.get(name="nb: retired job").enabled
    assert PeriodicTask.objects.get(name="made in admin").enabled
