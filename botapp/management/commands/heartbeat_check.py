"""HEALTHCHECK контейнеров worker и beat: свежесть собственного пульса."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from botapp.ops import heartbeats


class Command(BaseCommand):
    help = "Exit non-zero unless the worker or beat heartbeat is fresh"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("component", choices=[heartbeats.WORKER, heartbeats.BEAT])
        parser.add_argument("--max-age", type=float, default=90.0)

    def handle(self, *args: Any, **options: Any) -> None:
        age = heartbeats.heartbeat_age(component=options["component"], this_host=True)
        if age is None or age > options["max_age"]:
            raise CommandError(f"{options['component']} heartbeat stale: {age}")
        self.stdout.write(f"{options['component']} heartbeat {age:.1f}s old")
