"""Обзор панели: числа совпадают с прямыми SQL-запросами, дни — в DASHBOARD_TIME_ZONE, SVG-графики."""

from __future__ import annotations

import itertools
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.db import connection
from django.utils import timezone

from botapp.billing import ledger
from botapp.billing.payments import invoice_create, payment_complete, payment_refunded_externally
from botapp.models import (
    ErrorEvent,
    GenerationJob,
    GenerationModel,
    JobStatus,
    Payment,
    PricingSettings,
    TelegramUser,
)
from botapp.ops.errors import error_record
from botapp.tests.admin.conftest import verified_client
from botapp.tests.billing.factories import package_make, user_fund, user_make
from dashboard.charts import Series, svg_bar_chart, svg_hbar_chart, svg_line_chart
from dashboard.selectors.overview import overview_period, overview_report

SVG = "{http://www.w3.org/2000/svg}"
_keys = itertools.count(1)


@dataclass(frozen=True)
class Moments:
    """Точки времени относительно «сейчас» в часовом поясе панели."""

    now: datetime
    today: datetime  # между локальной полуночью и «сейчас»
    days_3: datetime
    days_10: datetime
    days_40: datetime


def moments(now: datetime) -> Moments:
    tz = ZoneInfo(settings.DASHBOARD_TIME_ZONE)
    midnight = datetime.combine(now.astimezone(tz).date(), time.min, tzinfo=tz)
    noon = midnight + timedelta(hours=12)
    return Moments(
        now=now,
        today=midnight + (now - midnight) / 2,
        days_3=noon - timedelta(days=3),
        days_10=noon - timedelta(days=10),
        days_40=noon - timedelta(days=40),
    )


def _user(*, created: datetime, seen: datetime) -> TelegramUser:
    user = user_make()
    TelegramUser.objects.filter(pk=user.pk).update(created_at=created, last_seen_at=seen)
    return user


def _job(
    user: TelegramUser,
    slug: str,
    status: str,
    created: datetime,
    *,
    duration_s: float | None = None,
    charged: int = 0,
    cost: str = "0",
) -> GenerationJob:
    model = GenerationModel.objects.get(slug=slug)
    started = created + timedelta(seconds=5) if duration_s is not None or status == JobStatus.FAILED else None
    generated = started + timedelta(seconds=duration_s) if started and duration_s is not None else None
    job = GenerationJob.objects.create(
        user=user, model=model, kind=model.kind, status=status, idempotency_key=f"overview:{next(_keys)}",
        price=max(charged, 10), charged=charged, cost_usd=Decimal(cost),
        deadline=created + timedelta(hours=1),
        started_at=started, generated_at=generated,
        delivered_at=generated if status == JobStatus.DELIVERED else None,
    )  # fmt: skip
    GenerationJob.objects.filter(pk=job.pk).update(created_at=created)
    return job


def _payment(user: TelegramUser, method: str, amount: str, currency: str, created: datetime) -> Payment:
    package = package_make(stars=50, tokens=50)
    invoice = invoice_create(
        user=user, package=package, method=method, currency=currency, amount=Decimal(amount)
    )
    result = payment_complete(
        method=method, external_id=f"overview-{next(_keys)}", invoice=invoice, user=user,
        amount=Decimal(amount), currency=currency, raw={},
    )  # fmt: skip
    Payment.objects.filter(pk=result.payment.pk).update(created_at=created)
    return result.payment


def seed_overview(now: datetime) -> Moments:
    """Пользователи, платежи, задания разных моделей/статусов/дней, возвраты холдов, ошибки.

    Деньги — только через сервисы журнала; задания — строками без холда (журнал не трогают).
    """
    at = moments(now)
    PricingSettings.objects.update_or_create(
        pk=1, defaults={"tokens_per_usd": Decimal(100), "stars_usd_rate": Decimal("0.013")}
    )
    old_regular = _user(created=at.days_40, seen=at.today)  # старый, активен сегодня
    fresh = _user(created=at.days_3, seen=at.days_3)  # новый за 7 дней
    job_only = _user(created=at.days_10, seen=at.days_40)  # апдейтов давно не было, но есть задание
    newcomer = _user(created=at.today, seen=at.today)  # новый сегодня
    _user(created=at.days_40, seen=at.days_40)  # неактивный

    # Сегодня: 2 доставлено + 1 ошибка у nano-banana, видео доставлено, одно в очереди, одно отменено
    _job(old_regular, "nano-banana", JobStatus.DELIVERED, at.today, duration_s=10, charged=14, cost="0.067")
    _job(newcomer, "nano-banana", JobStatus.DELIVERED, at.today, duration_s=20, charged=14, cost="0.067")
    _job(newcomer, "nano-banana", JobStatus.FAILED, at.today, charged=0, cost="0.067")
    _job(old_regular, "veo-3-1-fast", JobStatus.DELIVERED, at.today, duration_s=60, charged=240, cost="1.2")
    _job(newcomer, "nano-banana-pro", JobStatus.QUEUED, at.today)
    _job(newcomer, "nano-banana-pro", JobStatus.CANCELLED, at.today)
    # 3 дня назад: доставлено, просрочено, очередь (старейшая)
    _job(fresh, "nano-banana", JobStatus.DELIVERED, at.days_3, duration_s=30, charged=14, cost="0.067")
    _job(job_only, "nano-banana-pro", JobStatus.EXPIRED, at.days_3, cost="0.134")
    _job(fresh, "nano-banana", JobStatus.QUEUED, at.days_3)
    # 10 и 40 дней назад
    _job(old_regular, "veo-3-1-fast", JobStatus.DELIVERED, at.days_10, duration_s=90, charged=240, cost="1.2")
    _job(old_regular, "nano-banana", JobStatus.DELIVERED, at.days_40, duration_s=15, charged=14, cost="0.067")

    # Платежи: звёзды сегодня, звёзды 3 дня назад (возвращены), USD, RUB и EUR картой
    _payment(old_regular, "stars", "100", "XTR", at.today)
    refunded = _payment(fresh, "stars", "50", "XTR", at.days_3)
    payment_refunded_externally(method="stars", external_id=refunded.external_id)
    _payment(fresh, "lava", "5.00", "USD", at.days_3)
    _payment(job_only, "lava", "199.00", "RUB", at.days_10)
    _payment(old_regular, "lava", "3.00", "EUR", at.days_40)

    # Холды, вернувшиеся пользователю (release) — сегодня
    user_fund(newcomer, 100)
    for amount in (30, 12):
        held = ledger.hold(user=newcomer, amount=amount, key=f"overview-hold:{next(_keys)}")
        ledger.release(hold=held, reason="test")

    # Ошибки: три за сутки, одна старше
    for _ in range(3):
        error_record(source="test", exc=RuntimeError("boom"))
    ErrorEvent.objects.filter(pk=ErrorEvent.objects.order_by("pk").first().pk).update(  # type: ignore[union-attr]
        created_at=now - timedelta(hours=25)
    )
    error_record(source="test", exc=ValueError("other"))
    return at


def _sql(query: str, params: list[Any]) -> list[tuple[Any, ...]]:
    with connection.cursor() as cursor:
        cursor.execute(query, params)
        return list(cursor.fetchall())


def _percentile_cont(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    position = fraction * (len(ordered) - 1)
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


@pytest.mark.django_db
@pytest.mark.parametrize("key", ["today", "7", "30"])
def test_overview_numbers_match_direct_sql_counts(key: str) -> None:
    seed_overview(timezone.now())
    period = overview_period(key=key, now=timezone.now())
    report = overview_report(period=period)
    bounds = [period.start, period.end]

    [(new,)] = _sql(
        "SELECT count(*) FROM botapp_telegramuser WHERE created_at >= %s AND created_at < %s", bounds
    )
    [(active,)] = _sql(
        "SELECT count(*) FROM (SELECT id FROM botapp_telegramuser "
        "WHERE last_seen_at >= %s AND last_seen_at < %s "
        "UNION SELECT user_id FROM botapp_generationjob WHERE created_at >= %s AND created_at < %s) AS a",
        bounds + bounds,
    )
    assert (report.users.new, report.users.active) == (new, active)

    by_status = _sql(
        "SELECT m.slug, j.status, count(*) FROM botapp_generationjob j JOIN botapp_generationmodel m "
        "ON m.id = j.model_id WHERE j.created_at >= %s AND j.created_at < %s GROUP BY 1, 2",
        bounds,
    )
    assert {(m.slug, s, n) for m in report.models for s, n in m.by_status.items() if n} == set(by_status)

    durations = _sql(
        "SELECT m.slug, EXTRACT(EPOCH FROM j.generated_at - j.started_at)::float FROM botapp_generationjob j "
        "JOIN botapp_generationmodel m ON m.id = j.model_id "
        "WHERE j.created_at >= %s AND j.created_at < %s AND j.generated_at IS NOT NULL",
        bounds,
    )
    for model in report.models:
        mine = [seconds for slug, seconds in durations if slug == model.slug]
        if not mine:
            assert model.p50_s is None
            continue
        assert model.p50_s == pytest.approx(_percentile_cont(mine, 0.5))
        assert model.p95_s == pytest.approx(_percentile_cont(mine, 0.95))

    money = _sql(
        "SELECT m.slug, sum(j.charged), coalesce(sum(j.cost_usd) FILTER (WHERE j.status = 'delivered'), 0) "
        "FROM botapp_generationjob j JOIN botapp_generationmodel m ON m.id = j.model_id "
        "WHERE j.created_at >= %s AND j.created_at < %s GROUP BY 1",
        bounds,
    )
    assert {(m.slug, m.charged_tokens, m.cost_usd) for m in report.models} == set(money)
    for model in report.models:
        assert model.margin_usd == Decimal(model.charged_tokens) / 100 - model.cost_usd

    payments = _sql(
        "SELECT method, currency, count(*), sum(amount), "
        "coalesce(sum(amount) FILTER (WHERE status = 'refunded'), 0) "
        "FROM botapp_payment WHERE created_at >= %s AND created_at < %s GROUP BY 1, 2",
        bounds,
    )
    assert {(r.method, r.currency, r.count, r.gross, r.refunded) for r in report.revenue.rows} == set(
        payments
    )

    [(released, refunded)] = _sql(
        "SELECT coalesce(sum(e.amount) FILTER (WHERE t.kind = 'release'), 0), "
        "coalesce(-sum(e.amount) FILTER (WHERE t.kind = 'payment_refund'), 0) "
        "FROM botapp_ledgerentry e JOIN botapp_ledgertransaction t ON t.id = e.transaction_id "
        "JOIN botapp_account a ON a.id = e.account_id "
        "WHERE a.kind = 'user' AND e.bucket = 'available' AND t.created_at >= %s AND t.created_at < %s",
        bounds,
    )
    assert (report.ledger.released_tokens, report.ledger.refunded_tokens) == (released, refunded)

    [(queued, oldest)] = _sql(
        "SELECT count(*), min(created_at) FROM botapp_generationjob WHERE status = 'queued'", []
    )
    assert (report.queue.queued, report.queue.oldest_queued_at) == (queued, oldest)
    [(errors,)] = _sql(
        "SELECT count(*) FROM botapp_errorevent WHERE created_at >= %s", [period.end - timedelta(1)]
    )
    assert report.errors.total == errors

    daily = dict(
        _sql(
            "SELECT (created_at AT TIME ZONE %s)::date, count(*) FROM botapp_generationjob "
            "WHERE created_at >= %s AND created_at < %s GROUP BY 1",
            [settings.DASHBOARD_TIME_ZONE, *bounds],
        )
    )
    assert {d.day: d.total for d in report.days if d.total} == daily
    assert len(report.days) == {"today": 1, "7": 7, "30": 30}[key]


@pytest.mark.django_db
def test_the_seeded_week_adds_up_as_expected() -> None:
    seed_overview(timezone.now())
    report = overview_report(period=overview_period(key="7", now=timezone.now()))

    assert (report.users.new, report.users.active) == (2, 4)
    assert report.jobs_total == 9
    assert report.status_total(JobStatus.DELIVERED) == 4
    assert report.success_rate == pytest.approx(4 / 6)  # доставлено / (доставлено + ошибка + просрочено)
    nano = next(m for m in report.models if m.slug == "nano-banana")
    assert (nano.p50_s, nano.charged_tokens, nano.cost_usd) == (20.0, 42, Decimal("0.201"))
    assert nano.margin_usd == Decimal("0.42") - Decimal("0.201")
    # 100⭐ × 0.013 + 5 USD; возвращённые 50⭐ не считаются, RUB — без курса и вне недели
    assert report.revenue.usd == Decimal("6.300")
    assert (report.ledger.released_tokens, report.ledger.refunded_tokens) == (42, 50)
    assert report.queue.queued == 2
    assert report.errors.total == 3
    assert [e.count for e in report.errors.groups] == [2, 1]


@pytest.mark.django_db
def test_a_job_late_in_the_evening_counts_on_the_local_day(settings: Any) -> None:
    settings.DASHBOARD_TIME_ZONE = "Asia/Tokyo"  # UTC+9, без перехода на летнее время
    user = user_make()
    now = datetime(2026, 3, 10, 3, 0, tzinfo=ZoneInfo("UTC"))  # 12:00 в Токио
    # 20:00 UTC 8 марта — это уже 9 марта в Токио
    _job(user, "nano-banana", JobStatus.DELIVERED, datetime(2026, 3, 8, 20, 0, tzinfo=ZoneInfo("UTC")))
    period = overview_period(key="7", now=now)
    assert period.start == datetime(2026, 3, 4, 0, 0, tzinfo=ZoneInfo("Asia/Tokyo"))
    report = overview_report(period=period)
    assert {d.day.isoformat(): d.total for d in report.days if d.total} == {"2026-03-09": 1}
    assert overview_period(key="today", now=now).start == datetime(2026, 3, 10, tzinfo=ZoneInfo("Asia/Tokyo"))


@pytest.mark.django_db
def test_rubles_and_euros_stay_in_their_currency() -> None:
    user = user_make()
    at = moments(timezone.now())
    _payment(user, "lava", "199.00", "RUB", at.today)
    PricingSettings.objects.filter(pk=1).update(stars_usd_rate=Decimal("0.02"))
    _payment(user, "stars", "50", "XTR", at.today)
    report = overview_report(period=overview_period(key="today", now=timezone.now()))
    assert report.revenue.usd == Decimal("1.00")
    assert [(r.currency, r.net) for r in report.revenue.unconverted] == [("RUB", Decimal("199.00"))]


@pytest.mark.django_db
def test_the_page_shows_the_seeded_numbers_for_each_period() -> None:
    seed_overview(timezone.now())
    staff = User.objects.create_user("olga", password="pw", is_staff=True)
    client = verified_client(staff)

    week = client.get("/dashboard/?period=7")
    assert week.status_code == 200
    html = week.content.decode()
    assert 'data-kpi="new_users">2<' in html
    assert 'data-kpi="jobs">9<' in html
    assert 'data-kpi="success_rate">67%<' in html
    assert 'data-kpi="revenue_usd">$6,30<' in html
    assert "199,00 RUB" not in html  # рубли — 10 дней назад, вне недели
    assert 'data-model="veo-3-1-fast"' in html
    assert html.count('class="bar"') == 7 + 2 * len(week.context["report"].models)

    month = client.get("/dashboard/?period=30").content.decode()
    assert 'data-kpi="jobs">10<' in month
    assert "199,00 RUB" in month
    today = client.get("/dashboard/?period=today").content.decode()
    assert 'data-kpi="new_users">1<' in today
    assert 'data-kpi="released_tokens">42<' in today


@pytest.mark.django_db
def test_an_unknown_period_falls_back_to_seven_days() -> None:
    client = verified_client(User.objects.create_user("olga", password="pw", is_staff=True))
    response = client.get("/dashboard/?period=365")
    assert response.context["report"].period.key == "7"
    assert 'aria-current="page">7 дней<' in response.content.decode()
    # Пустые дни — нулевые столбцы; моделей нет — «нет данных»
    assert response.content.decode().count('class="bar"') == 7
    assert "нет данных" in response.content.decode()


@pytest.mark.django_db
def test_the_overview_needs_a_verified_staff_session() -> None:
    from django.test import Client

    client = Client()
    client.force_login(User.objects.create_user("olga", password="pw", is_staff=True))
    assert client.get("/dashboard/").status_code == 302


def _parse(svg: str) -> ET.Element:
    root = ET.fromstring(svg)  # noqa: S314 — наш собственный вывод, не внешние данные
    assert root.tag == f"{SVG}svg"
    assert root.get("viewBox")
    return root


def test_the_bar_chart_draws_one_bar_per_label() -> None:
    root = _parse(svg_bar_chart(title="Генерации", labels=["01.11", "02.11", "03.11"], values=[3, 0, 7]))
    bars = root.findall(f"{SVG}rect[@class='bar']")
    assert len(bars) == 3
    heights = [float(bar.get("height", "0")) for bar in bars]
    assert heights[1] == 0
    assert heights[2] > heights[0] > 0


def test_the_line_chart_draws_a_point_per_value_and_breaks_on_gaps() -> None:
    svg = svg_line_chart(
        title="<Доля>", labels=["a", "b", "c", "d"],
        series=[Series("успех", [0.5, None, 1.0, 0.75]), Series("x", [1, 2, 3, 4])], top=1.0,
    )  # fmt: skip
    root = _parse(svg)
    assert len(root.findall(f"{SVG}circle[@class='point']")) == 7
    assert len(root.findall(f"{SVG}polyline[@class='line']")) == 2  # «успех» — один отрезок из двух точек
    assert "&lt;Доля&gt;" in svg


def test_a_single_day_line_chart_is_a_lone_point() -> None:
    root = _parse(svg_line_chart(title="t", labels=["28.11"], series=[Series("v", [2.0])]))
    assert len(root.findall(f"{SVG}circle[@class='point']")) == 1
    assert root.findall(f"{SVG}polyline") == []


def test_the_horizontal_bars_mark_a_loss_in_red() -> None:
    root = _parse(svg_hbar_chart(title="Маржа", bars=[("a & b", 2.0), ("c", -1.0)]))
    bars = root.findall(f"{SVG}rect[@class='bar']")
    assert [bar.get("fill") for bar in bars] == ["#2563eb", "#b91c1c"]
    assert float(bars[0].get("width", "0")) == 2 * float(bars[1].get("width", "0"))


@pytest.mark.parametrize(
    "svg",
    [
        svg_bar_chart(title="t", labels=[], values=[]),
        svg_line_chart(title="t", labels=["a"], series=[Series("v", [None])]),
        svg_hbar_chart(title="t", bars=[]),
    ],
)
def test_charts_without_data_say_so(svg: str) -> None:
    root = _parse(svg)
    assert root.findall(f"{SVG}rect[@class='bar']") == []
    assert "нет данных" in svg
