"""Чтение заданий генерации для панели: фильтры списка и миниатюры результатов."""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta

from django.db.models import Q, QuerySet
from django.utils import timezone

from botapp.models import GenerationJob, GenerationModel, JobOutput, JobStatus

logger = logging.getLogger(__name__)

THUMBNAIL_TTL_S = 3600
PAGE_SIZE = 50


@dataclass(frozen=True)
class JobFilters:
    model: str = ""
    status: str = ""
    error_category: str = ""
    user: str = ""
    date_from: date | None = None
    date_to: date | None = None


@dataclass(frozen=True)
class JobRow:
    job: GenerationJob
    thumbnails: list[str]
    videos: int


def _user_q(value: str) -> Q:
    value = value.strip().lstrip("@")
    if value.isdigit():
        return Q(user__telegram_id=int(value))
    return Q(user__username__iexact=value)


def jobs_filtered(*, filters: JobFilters) -> QuerySet[GenerationJob]:
    """Задания по фильтрам, новые сверху (страницы режет вызывающий)."""
    jobs = GenerationJob.objects.select_related("user", "model").order_by("-created_at", "-id")
    if filters.model:
        jobs = jobs.filter(model__slug=filters.model)
    if filters.status:
        jobs = jobs.filter(status=filters.status)
    if filters.error_category:
        jobs = jobs.filter(error_category=filters.error_category)
    if filters.user:
        jobs = jobs.filter(_user_q(filters.user))
    # Диапазон, а не created_at__date: функция над столбцом не даёт PostgreSQL взять индекс
    if filters.date_from:
        jobs = jobs.filter(created_at__gte=_day_start(filters.date_from))
    if filters.date_to:
        jobs = jobs.filter(created_at__lt=_day_start(filters.date_to + timedelta(days=1)))
    return jobs


def _day_start(day: date) -> datetime:
    """Начало суток в часовом поясе проекта (как считал created_at__date)."""
    return timezone.make_aware(datetime.combine(day, time.min))


def job_rows(*, jobs: Iterable[GenerationJob]) -> list[JobRow]:
    """Задания с подписанными ссылками на миниатюры картинок (видео — только счётчик)."""
    jobs = list(jobs)
    outputs: dict[int, list[JobOutput]] = defaultdict(list)
    for output in JobOutput.objects.filter(job__in=jobs).exclude(storage_key="").order_by("job_id", "index"):
        outputs[output.job_id].append(output)
    keys = [o.storage_key for job in jobs if job.kind == "image" for o in outputs[job.pk]]
    urls = _signed(keys)
    rows = []
    for job in jobs:
        images = outputs[job.pk] if job.kind == "image" else []
        thumbnails = [url for o in images if (url := urls.get(o.storage_key))]
        videos = sum(1 for o in outputs[job.pk] if job.kind == "video")
        rows.append(JobRow(job=job, thumbnails=thumbnails, videos=videos))
    return rows


def _signed(keys: list[str]) -> dict[str, str]:
    """Ссылки на миниатюры страницы одним запросом к хранилищу (в Supabase — HTTP на каждый вызов)."""
    from botapp.providers.storage import media_storage

    if not keys:
        return {}
    try:
        return media_storage().signed_urls(kind="image", keys=keys, expires_s=THUMBNAIL_TTL_S)
    except Exception:
        # Хранилище недоступно — страница всё равно открывается, без картинок
        logger.warning("thumbnails unavailable for %s outputs", len(keys), exc_info=True)
        return {}


def job_filter_choices() -> dict[str, list[tuple[str, str]]]:
    """Значения для выпадающих списков фильтра."""
    categories = (
        GenerationJob.objects.exclude(error_category="")
        .order_by("error_category")
        .values_list("error_category", flat=True)
        .distinct()
    )
    return {
        "models": list(GenerationModel.objects.order_by("kind", "order").values_list("slug", "name_ru")),
        "statuses": list(JobStatus.choices),
        "error_categories": [(c, c) for c in categories],
    }
