"""Задачи панели: рассылки. Тонкие — id, один сервис; имена с префиксом очереди."""

from __future__ import annotations

from celery import shared_task


@shared_task(name="delivery.broadcast_send", ignore_result=True, acks_late=True)
def broadcast_send(broadcast_id: int, token: str = "") -> None:
    """Запуск, возобновление или продолжение рассылки: пачки получателей через общий лимитер."""
    from dashboard.services.broadcasts import broadcast_send_run

    run = broadcast_send_run(broadcast_id=broadcast_id, token=token)
    if run.outcome in ("continue", "deferred"):
        # Лимит или сеть: не спим в слоте воркера, а ставим себя снова
        broadcast_send.apply_async((broadcast_id, run.token), countdown=run.countdown)


@shared_task(name="maintenance.broadcasts_tick", ignore_result=True)
def broadcasts_tick() -> None:
    """По расписанию: запустить наступившие рассылки и поднять цепочки, погибшие с воркером."""
    from dashboard.services.broadcasts import broadcasts_tick as tick

    tick()
