"""Задачи денег (очередь maintenance): сверка журнала и сверка звёзд с Telegram."""

from __future__ import annotations

from celery import shared_task

from botapp.billing import reconcile, stars


@shared_task(name="maintenance.reconcile_ledger", ignore_result=True)
def reconcile_ledger() -> None:
    """По расписанию: инварианты денег; нарушение — событие ошибки и оповещение."""
    reconcile.reconcile_and_alert()


@shared_task(name="maintenance.reconcile_stars", ignore_result=True)
def reconcile_stars() -> None:
    """Раз в сутки: зачислить оплаты звёздами, апдейт о которых потерялся."""
    stars.stars_reconcile()
