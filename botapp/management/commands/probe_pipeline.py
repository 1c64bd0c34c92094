"""Проверить путь брокер → воркер → БД: опубликовать задачу и дождаться отметки."""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from botapp.models import PipelineProbe
from botapp.tasks.maintenance import complete_probe


class Command(BaseCommand):
    help = "Publish a probe task and wait until a worker marks it done in the database"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=30.0)

    def handle(self, *args: Any, **options: Any) -> None:
        with transaction.atomic():
            probe = PipelineProbe.objects.create()
            transaction.on_commit(lambda: complete_probe.delay(probe.pk))
        started = time.monotonic()
        while time.monotonic() - started < options["timeout"]:
            probe.refresh_from_db()
            if probe.completed_at:
                self.stdout.write(f"probe #{probe.pk} done in {time.monotonic() - started:.2f}s")
                return
            time.sleep(0.2)
        raise CommandError(f"probe #{probe.pk} not done within {options['timeout']}s")
