"""Срок хранения медиа: старые файлы удаляются из хранилища, file_id Telegram остаются."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from django.test import override_settings
from django.utils import timezone

from botapp.generation import jobs, retention
from botapp.models import GenerationModel, JobOutput
from botapp.providers.storage import media_storage
from botapp.tests.billing.factories import user_fund, user_make

pytestmark = pytest.mark.django_db


def test_outputs_older_than_the_retention_period_lose_their_files(tmp_path: Path) -> None:
    with override_settings(MEDIA_ROOT=tmp_path, MEDIA_STORAGE_BACKEND="local", MEDIA_RETENTION_DAYS=30):
        user = user_make()
        user_fund(user, 100)
        job, _ = jobs.job_create(
            user=user,
            model=GenerationModel.objects.get(slug="nano-banana-2"),
            prompt="old",
            params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1},
            reference_file_ids=[],
            idempotency_key="old",
        )
        jobs.job_fail(job=job, category="test")
        storage = media_storage()
        for index, age in ((0, 31), (1, 1)):
            key = f"jobs/{job.pk}/{index}.png"
            storage.put(kind="image", key=key, data=b"\x89PNG fake", content_type="image/png")
            output = JobOutput.objects.create(
                job=job, index=index, status="ok", storage_key=key, photo_file_id=f"file-{index}"
            )
            JobOutput.objects.filter(pk=output.pk).update(created_at=timezone.now() - timedelta(days=age))
        assert retention.media_retention_sweep() == 1
        old, fresh = JobOutput.objects.order_by("index")
        assert old.storage_key == ""
        assert old.photo_file_id == "file-0"  # галерея по file_id продолжает работать
        assert fresh.storage_key
        assert not list(tmp_path.rglob("0.png"))
        assert list(tmp_path.rglob("1.png"))
