"""Задачи генерации: тонкие — id задания, один сервис, повтор только по названным причинам."""

from __future__ import annotations

import logging
import time

from celery import shared_task
from django.conf import settings
from telegram.error import BadRequest, NetworkError

from botapp.providers.base import ProviderTransientError
from botapp.telegram.sender import SendDeferred

NETWORK_RETRY_S = 5

logger = logging.getLogger(__name__)


@shared_task(name="generation.run_job", ignore_result=True, acks_late=True)
def run_job(job_id: int) -> None:
    """Из очереди: захватить задание и выполнить стадию генерации (или отправить операцию Veo)."""
    from botapp.generation import jobs, runner

    started = time.monotonic()
    result = runner.job_run(job_id=job_id)
    if result.outcome == "busy":
        # Через job_publish: отметка published_at — иначе сборщик сочтёт сообщение потерянным и
        # опубликует копию, и цепочек ожидания станет две (потом четыре…)
        jobs.job_publish(job_id, countdown=result.countdown)
    elif result.outcome == "polling":
        poll_job.apply_async((job_id,), countdown=result.countdown)
    elif result.outcome == "generated":
        _deliver(job_id, generated_by=started)


@shared_task(name="video_poll.poll_job", ignore_result=True, acks_late=True)
def poll_job(job_id: int) -> None:
    """Опрос операции Veo; не готово — себя же с задержкой (без sleep в слоте воркера)."""
    from botapp.generation import runner

    started = time.monotonic()
    result = runner.job_poll(job_id=job_id)
    if result.outcome == "polling":
        poll_job.apply_async((job_id,), countdown=result.countdown)
    elif result.outcome == "generated":
        _deliver(job_id, generated_by=started)


def _later(job_id: int, countdown: float) -> None:
    from botapp.generation import jobs

    jobs.job_delivery_hold(job_id=job_id, seconds=countdown)
    deliver_job.apply_async((job_id,), countdown=countdown)


def _deliver(job_id: int, *, generated_by: float | None = None) -> None:
    """Доставить сразу в этой задаче; отложенное (429, сеть) — задачей delivery.deliver_job.

    Готовый результат доставляется тем же воркером без лишнего круга через брокер (аренду
    доставки задача взяла переходом в GENERATED). Если воркер умрёт между «сгенерировано» и
    отправкой, сборщик опубликует доставку, когда аренда истечёт. Генерация, съевшая половину
    мягкого лимита времени задачи, отдаёт доставку отдельной задаче: у той лимит свой.

    generated_by — момент старта задачи, которая сама перевела задание в GENERATED (и держит
    аренду); None — задача доставки, аренду она берёт сама.
    """
    from botapp.generation import delivery

    half_limit = settings.CELERY_TASK_SOFT_TIME_LIMIT / 2
    if generated_by is not None and time.monotonic() - generated_by > half_limit:
        _later(job_id, 0)
        return
    try:
        delivery.job_deliver(job_id=job_id, claimed=generated_by is not None)
    except SendDeferred as deferred:
        _later(job_id, max(1.0, deferred.retry_after))
    except BadRequest:
        # 400 — не сеть (в PTB BadRequest наследует NetworkError): повтор не поможет, доставку
        # с отказом job_deliver уже урегулировал; сюда доходит лишь непредвиденное
        logger.exception("job %s: delivery rejected by Telegram", job_id)
    except NetworkError as exc:
        # Таймаут или обрыв до Telegram: отправленное уже запомнено, повтор дошлёт остальное
        # (повторы не бесконечны: после DELIVERY_GIVE_UP_S доставка сдаётся сама)
        logger.warning("job %s: Telegram unreachable during delivery (%r), retrying", job_id, exc)
        _later(job_id, NETWORK_RETRY_S)
    except ProviderTransientError:
        # Хранилище не ответило при чтении результата: тот же повтор, что при сбое сети
        logger.warning("job %s: storage unavailable during delivery, retrying", job_id, exc_info=True)
        _later(job_id, NETWORK_RETRY_S)


@shared_task(name="delivery.deliver_job", ignore_result=True, acks_late=True)
def deliver_job(job_id: int) -> None:
    """Отправить результат или сообщение о неудаче; 429 — повтор через retry_after, без перегенерации."""
    _deliver(job_id)


@shared_task(name="maintenance.sweep_jobs", ignore_result=True)
def sweep_jobs() -> None:
    """По расписанию: переопубликовать потерянное, вернуть задания умерших воркеров, просрочить."""
    from botapp.generation import sweeper

    sweeper.jobs_sweep()


@shared_task(name="delivery.resend_job", ignore_result=True, acks_late=True)
def resend_job(job_id: int) -> None:
    """По просьбе персонала: прислать доставленный результат снова по file_id (без генерации и списания)."""
    from botapp.generation import delivery

    try:
        delivery.job_resend(job_id=job_id)
    except SendDeferred as deferred:
        resend_job.apply_async((job_id,), countdown=max(1.0, deferred.retry_after))
