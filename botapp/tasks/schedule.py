"""Все периодические задачи — здесь; в БД их переносит `manage.py sync_periodic_tasks`."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings


@dataclass(frozen=True)
class Periodic:
    name: str
    task: str
    every_s: int
    queue: str = "maintenance"


def periodic_tasks() -> list[Periodic]:
    return [
        Periodic("beat tick", "maintenance.beat_tick", settings.BEAT_TICK_INTERVAL_S),
        Periodic("inbox prune", "maintenance.inbox_prune", 3600),
        Periodic("job sweep", "maintenance.sweep_jobs", settings.JOB_SWEEP_INTERVAL_S),
        # Место в очереди в статусах ждущих заданий (progress.queue_refresh)
        Periodic("queue status", "maintenance.queue_status", 15),
        Periodic("media retention", "maintenance.media_retention", 3600),
        Periodic(
            "ledger reconciliation", "maintenance.reconcile_ledger", settings.LEDGER_RECONCILE_INTERVAL_S
        ),
        Periodic("broadcasts tick", "maintenance.broadcasts_tick", 30),
        # Раз в час: потерянная оплата звёздами зачисляется в пределах часа, а догнавший курсор стоит
        # одного-двух вызовов getStarTransactions
        Periodic("stars reconciliation", "maintenance.reconcile_stars", 3600),
        # Потерянный вебхук lava (все 19 повторов — в наш простой): оплата картой зачисляется за 10 минут
        Periodic("lava poll", "maintenance.lava_poll", 600),
    ]
