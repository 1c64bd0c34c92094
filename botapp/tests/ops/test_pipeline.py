"""Задача, опубликованная через Redis, выполняется воркером, и её след виден в PostgreSQL."""

from __future__ import annotations

import os
from typing import Any

import pytest
from django.db import transaction

from botapp.models import PipelineProbe
from botapp.tasks.maintenance import complete_probe
from botapp.tests.support.processes import wait_for

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_task_published_through_redis_is_executed_by_the_worker(celery_worker_process: Any) -> None:
    with transaction.atomic():
        probe = PipelineProbe.objects.create()
        transaction.on_commit(lambda: complete_probe.delay(probe.pk))

    def done() -> bool:
        probe.refresh_from_db()
        return probe.completed_at is not None

    wait_for(done, timeout=30, what="probe completed by the worker")
    # Выполнил другой процесс — дочерний процесс пула воркера, а не тест
    assert probe.worker_pid not in (None, os.getpid(), celery_worker_process.pid)


def test_the_probe_command_reports_success(celery_worker_process: Any) -> None:
    from io import StringIO

    from django.core.management import call_command

    out = StringIO()
    call_command("probe_pipeline", "--timeout", "30", stdout=out)
    assert "done in" in out.getvalue()
    assert PipelineProbe.objects.filter(completed_at__isnull=False).count() == 1
