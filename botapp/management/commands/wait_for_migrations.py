"""Pre-deploy воркера и beat на Railway: дождаться миграций этого релиза, которые применяет web.

Сервисы выкатываются из одного пуша независимо: без ожидания новый воркер мог стартовать раньше,
чем pre-deploy web применил миграции, — или после того, как они упали, — и работать новым кодом
по старой схеме. Не дождались — ошибка: Railway не переключает сервис, работает прежняя версия.
Сама команда ничего не мигрирует: две миграции разом из трёх сервисов — гонка.
"""

from __future__ import annotations

import time
from typing import Any

from django.core.management.base import BaseCommand, CommandError
from django.db import DatabaseError, connection
from django.db.migrations.executor import MigrationExecutor


def unapplied_migrations() -> list[str]:
    """Миграции кода, которых ещё нет в БД (то же, что `migrate --check`)."""
    executor = MigrationExecutor(connection)
    plan = executor.migration_plan(executor.loader.graph.leaf_nodes())
    return [f"{migration.app_label}.{migration.name}" for migration, _backwards in plan]


class Command(BaseCommand):
    help = "Wait until the database has every migration of this code (pre-deploy of worker and beat)"

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--timeout", type=float, default=900.0, help="seconds to wait")
        parser.add_argument("--interval", type=float, default=5.0, help="seconds between checks")

    def handle(self, *args: Any, **options: Any) -> None:
        deadline = time.monotonic() + options["timeout"]
        while True:
            try:
                missing = unapplied_migrations()
            except DatabaseError as exc:
                # База ещё поднимается или перезапускается при выкате — ждём, как и миграций;
                # следующая попытка откроет новое соединение
                missing = [f"database unavailable: {type(exc).__name__}"]
                connection.close()
            if not missing:
                self.stdout.write("all migrations are applied")
                return
            if time.monotonic() >= deadline:
                raise CommandError(f"migrations still missing after {options['timeout']:.0f}s: {missing[:5]}")
            self.stdout.write(f"waiting for {len(missing)} migration(s): {', '.join(missing[:3])}")
            time.sleep(options["interval"])
