"""/metrics: доступ по токену, счётчики из разных процессов, датчики из PostgreSQL и Redis."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta

import pytest
from django.test import Client, override_settings
from django.utils import timezone
from prometheus_client.parser import text_string_to_metric_families
from telegram.error import RetryAfter

from botapp.billing.reconcile import reconcile_and_alert
from botapp.models import GenerationJob, GenerationModel, JobStatus
from botapp.ops import metrics
from botapp.providers.base import ProviderPermanentError, ProviderTransientError
from botapp.telegram.sender import SharedRateLimiter
from botapp.tests.billing.factories import user_make
from botapp.tests.support.processes import ROOT, django_env

TOKEN = "metrics-token-for-tests-0123456789"  # pragma: allowlist secret


@pytest.fixture(autouse=True)
def clean_counters() -> Iterator[None]:
    metrics.metrics_reset()
    with override_settings(METRICS_TOKEN=TOKEN):
        yield


def _scrape() -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    metrics.metrics_flush()
    samples = {}
    for family in text_string_to_metric_families(metrics.metrics_render().decode()):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def _value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


@pytest.mark.django_db
def test_it_answers_401_without_a_token() -> None:
    response = Client().get("/metrics")
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.django_db
def test_it_answers_401_with_a_wrong_token() -> None:
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong-token").status_code == 401
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Basic {TOKEN}").status_code == 401


@pytest.mark.django_db
def test_it_is_switched_off_without_a_configured_token() -> None:
    with override_settings(METRICS_TOKEN=""):
        assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 404


@pytest.mark.django_db(transaction=True)
def test_the_right_token_gets_the_exposition_with_every_metric_name() -> None:
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    assert response.status_code == 200
    assert response["Content-Type"].startswith("text/plain")
    body = response.content.decode()
    for name in (
        "nanobanana_webhook_latency_seconds",
        "nanobanana_webhook_updates_total",
        "nanobanana_generation_jobs",
        "nanobanana_provider_latency_seconds",
        "nanobanana_provider_errors_total",
        "nanobanana_queue_depth",
        "nanobanana_telegram_sends_total",
        "nanobanana_telegram_429_total",
        "nanobanana_reconciliation_ok",
        "nanobanana_error_groups",
    ):
        assert f"# TYPE {name}" in body, name
    assert 'nanobanana_metrics_source_up{source="postgres"} 1.0' in body
    assert 'nanobanana_queue_depth{queue="' in body


@pytest.mark.django_db
def test_counters_from_two_processes_add_up() -> None:
    metrics.telegram_send_count(method="sendPhoto")
    metrics.metrics_flush()
    # Другой процесс с тем же окружением; его буфер сливается при выходе (atexit)
    code = (
        "import django; django.setup()\n"
        "from botapp.ops import metrics\n"
        "metrics.telegram_send_count(method='sendPhoto')\n"
        "metrics.telegram_send_count(method='sendPhoto')\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=django_env(), check=True, timeout=60)
    assert _value(_scrape(), "nanobanana_telegram_sends_total", method="sendPhoto") == 3


@pytest.mark.django_db(transaction=True)
def test_the_jobs_gauge_matches_the_database() -> None:
    model = GenerationModel.objects.create(
        slug="metrics-test", kind="image", provider_model_id="m", name_ru="М", name_en="M", unit_prices={}
    )
    user = user_make()
    for i, status in enumerate([JobStatus.QUEUED, JobStatus.QUEUED, JobStatus.DELIVERED, JobStatus.FAILED]):
        GenerationJob.objects.create(
            user=user, model=model, kind="image", status=status, idempotency_key=f"metrics-{i}",
            price=1, deadline=timezone.now() + timedelta(minutes=5),
        )  # fmt: skip
    response = Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    samples = {
        (sample.labels["state"], sample.labels["model"]): sample.value
        for family in text_string_to_metric_families(response.content.decode())
        if family.name == "nanobanana_generation_jobs"
        for sample in family.samples
    }
    for state in JobStatus.values:
        expected = GenerationJob.objects.filter(model=model, status=state).count()
        assert samples[(state, "metrics-test")] == expected
    assert samples[("queued", "metrics-test")] == 2


@pytest.mark.django_db
def test_webhook_updates_are_counted_by_type_and_timed() -> None:
    import asyncio

    @metrics.webhook_timed
    async def handle(data: dict[str, object]) -> None:
        return None

    asyncio.run(handle({"update_id": 1, "callback_query": {}}))
    asyncio.run(handle({"update_id": 2, "made_up_kind": {}}))
    samples = _scrape()
    assert _value(samples, "nanobanana_webhook_updates_total", type="callback_query") == 1
    assert _value(samples, "nanobanana_webhook_updates_total", type="other") == 1
    assert _value(samples, "nanobanana_webhook_latency_seconds_count") == 2
    assert _value(samples, "nanobanana_webhook_latency_seconds_bucket", le="+Inf") == 2


@pytest.mark.django_db
def test_provider_calls_are_timed_and_errors_counted_by_category() -> None:
    @metrics.provider_timed("generate_image")
    def call(*, model_id: str, fail: Exception | None = None) -> str:
        if fail:
            raise fail
        return "ok"

    call(model_id="gemini-x")
    with pytest.raises(ProviderTransientError):
        call(model_id="gemini-x", fail=ProviderTransientError("429", category="rate_limited"))
    with pytest.raises(ProviderPermanentError):
        call(model_id="gemini-x", fail=ProviderPermanentError("нет", category="safety"))
    samples = _scrape()
    labels = {"operation": "generate_image", "model": "gemini-x"}
    assert _value(samples, "nanobanana_provider_latency_seconds_count", **labels) == 3
    assert (
        _value(
            samples, "nanobanana_provider_errors_total", **labels, kind="transient", category="rate_limited"
        )
        == 1
    )
    assert (
        _value(samples, "nanobanana_provider_errors_total", **labels, kind="permanent", category="safety")
        == 1
    )


@pytest.mark.django_db
def test_the_sender_counts_sends_and_429s() -> None:
    import asyncio

    calls = []

    async def callback() -> dict[str, object]:
        calls.append(1)
        if len(calls) == 1:
            raise RetryAfter(0)
        return {"ok": True}

    async def go() -> None:
        limiter = SharedRateLimiter(max_wait=1)
        await limiter.process_request(callback, (), {}, "getMe", {}, None)
        await limiter.shutdown()

    asyncio.run(go())
    samples = _scrape()
    assert _value(samples, "nanobanana_telegram_429_total", method="getMe") == 1
    assert _value(samples, "nanobanana_telegram_sends_total", method="getMe") == 1


@pytest.mark.django_db
def test_the_last_reconciliation_is_exposed() -> None:
    report = reconcile_and_alert()
    samples = _scrape()
    assert _value(samples, "nanobanana_reconciliation_ok") == (1 if report.ok else 0)
    assert _value(samples, "nanobanana_reconciliation_last_run_timestamp_seconds") > 0
