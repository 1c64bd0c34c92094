"""Встроенный запуск (make run без DATABASE_URL) — SQLite: захват задания работает и там."""

from __future__ import annotations

from pathlib import Path

import pytest

from botapp.tests.support.processes import base_env, migrate, shell_report

pytestmark = pytest.mark.slow

CODE = """
import json
from botapp.billing import ledger
from botapp.generation import jobs
from botapp.models import GenerationJob, GenerationModel, TelegramUser
user = TelegramUser.objects.create(telegram_id=4242, first_name="Ann")
ledger.credit(user=user, amount=100, key="seed", kind="adjustment", source=ledger.ADJUSTMENTS)
job, _ = jobs.job_create(
    user=user, model=GenerationModel.objects.get(slug="nano-banana-2"), prompt="a kite",
    params={"aspect_ratio": "1:1", "size": "1K", "outputs": 1}, reference_file_ids=[],
    idempotency_key="sqlite",
)
first = jobs.job_claim(job_id=job.pk)
second = jobs.job_claim(job_id=job.pk)
job.refresh_from_db()
print("REPORT " + json.dumps({
    "first": "claimed" if isinstance(first, GenerationJob) else first,
    "second": second, "status": job.status, "attempts": job.attempts,
    "provider_started": job.provider_started,
}))
"""


def test_a_job_is_claimed_once_on_the_embedded_sqlite_database(tmp_path: Path) -> None:
    env = base_env(DJANGO_SETTINGS_MODULE="config.settings.base", DATA_DIR=str(tmp_path), LOG_LEVEL="WARNING")
    migrate(env)
    assert (tmp_path / "db.sqlite3").exists()
    report = shell_report(env, CODE)
    assert report == {
        "first": "claimed",
        "second": "taken",
        "status": "running",
        "attempts": 1,
        "provider_started": True,
    }
