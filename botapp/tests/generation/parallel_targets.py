"""Функции, которые тесты гонок заданий запускают в отдельных ОС-процессах (support/parallel.py)."""

from __future__ import annotations

from botapp.generation import jobs
from botapp.models import GenerationJob


def claim(*, job_id: int) -> str:
    outcome = jobs.job_claim(job_id=job_id)
    return "claimed" if isinstance(outcome, GenerationJob) else outcome


def delivery_claim(*, job_id: int) -> str:
    return "claimed" if jobs.job_delivery_claim(job_id=job_id) else "taken"
