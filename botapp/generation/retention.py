"""Хранение медиа: срок MEDIA_RETENTION_DAYS и удаление по /delete_me.

Файлы удаляются из хранилища, а file_id Telegram остаются: галерея продолжает работать
через Telegram, но у нас копии больше нет. После /delete_me стираются и file_id, и промпты.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from botapp.models import GenerationJob, JobOutput, TelegramUser
from botapp.models.generation import ACTIVE_STATUSES
from botapp.providers.base import MediaKind

logger = logging.getLogger(__name__)

BATCH = 500


def _delete_objects(outputs: list[JobOutput]) -> None:
    from botapp.providers.storage import media_storage

    storage = media_storage()
    by_kind: dict[MediaKind, list[str]] = {"image": [], "video": []}
    for output in outputs:
        if output.storage_key:
            by_kind["video" if output.job.kind == "video" else "image"].append(output.storage_key)
    for kind, keys in by_kind.items():
        if keys:
            storage.delete(kind=kind, keys=keys)


def media_retention_sweep() -> int:
    """Удалить файлы результатов старше срока хранения; вернуть число удалённых."""
    cutoff = timezone.now() - timedelta(days=settings.MEDIA_RETENTION_DAYS)
    outputs = list(
        JobOutput.objects.select_related("job")
        .filter(created_at__lt=cutoff)
        .exclude(storage_key="")
        .exclude(job__status__in=ACTIVE_STATUSES)[:BATCH]
    )
    _delete_objects(outputs)
    JobOutput.objects.filter(pk__in=[o.pk for o in outputs]).update(storage_key="")
    return len(outputs)


def user_media_erase(*, user: TelegramUser) -> int:
    """/delete_me: файлы пользователя, его промпты и ссылки на фото; задания в работе не трогаем."""
    outputs = list(
        JobOutput.objects.select_related("job")
        .filter(job__user=user)
        .exclude(job__status__in=ACTIVE_STATUSES)
    )
    _delete_objects(outputs)
    with transaction.atomic():
        JobOutput.objects.filter(pk__in=[o.pk for o in outputs]).update(
            storage_key="", photo_file_id="", document_file_id="", video_file_id="", message_id=None
        )
        GenerationJob.objects.filter(user=user).exclude(status__in=ACTIVE_STATUSES).update(
            prompt="", reference_file_ids=[]
        )
    return len(outputs)
