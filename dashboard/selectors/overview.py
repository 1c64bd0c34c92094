"""Обзор панели: KPI за сегодня / 7 / 30 дней в часовом поясе DASHBOARD_TIME_ZONE.

Один запрос на виджет: агрегаты с условными Count/Sum, дни — TruncDate с tzinfo.
Период — с локальной полуночи первого дня по «сейчас»; задания и платежи относятся
к дню создания (created_at). Формулы — в Документация/dashboard-overview.md.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db.models import (
    Aggregate,
    Count,
    DurationField,
    Exists,
    ExpressionWrapper,
    F,
    FloatField,
    Min,
    OuterRef,
    Q,
    QuerySet,
    Sum,
)
from django.db.models.functions import Abs, Extract, TruncDate
from django.utils import timezone

from botapp.models import (
    Account,
    ErrorEvent,
    GenerationJob,
    JobStatus,
    LedgerEntry,
    Payment,
    PricingSettings,
    TelegramUser,
    TransactionKind,
)

# Ключ ?period= → число дней (сегодня — один день)
PERIODS: dict[str, int] = {"today": 1, "7": 7, "30": 30}
DEFAULT_PERIOD = "7"
STARS_CURRENCY = "XTR"
# Неуспех для доли успеха; отменённые пользователем и незавершённые не считаются
UNSUCCESSFUL = (JobStatus.FAILED, JobStatus.EXPIRED)
ERRORS_WINDOW = timedelta(hours=24)
ZERO = Decimal(0)


@dataclass(frozen=True)
class Period:
    key: str
    start: datetime
    end: datetime
    days: tuple[date, ...]


@dataclass(frozen=True)
class UserStats:
    new: int
    active: int


@dataclass
class ModelStats:
    model_id: int
    slug: str
    name: str
    total: int
    by_status: dict[str, int]
    charged_tokens: int
    cost_usd: Decimal
    revenue_usd: Decimal = ZERO
    p50_s: float | None = None
    p95_s: float | None = None

    @property
    def counts(self) -> list[int]:
        return [self.by_status[status] for status in JobStatus.values]

    @property
    def finished(self) -> int:
        return self.by_status[JobStatus.DELIVERED] + sum(self.by_status[s] for s in UNSUCCESSFUL)

    @property
    def success_rate(self) -> float | None:
        return self.by_status[JobStatus.DELIVERED] / self.finished if self.finished else None

    @property
    def margin_usd(self) -> Decimal:
        return self.revenue_usd - self.cost_usd

    @property
    def margin_rate(self) -> float | None:
        return float(self.margin_usd / self.revenue_usd) if self.revenue_usd else None


@dataclass(frozen=True)
class RevenueRow:
    method: str
    currency: str
    count: int
    gross: Decimal
    refunded: Decimal
    usd: Decimal | None  # None — валюта без курса (RUB, EUR): показываем как есть

    @property
    def net(self) -> Decimal:
        return self.gross - self.refunded


@dataclass(frozen=True)
class RevenueStats:
    rows: list[RevenueRow]

    @property
    def usd(self) -> Decimal:
        return sum((row.usd for row in self.rows if row.usd is not None), ZERO)

    @property
    def unconverted(self) -> list[RevenueRow]:
        return [row for row in self.rows if row.usd is None]


@dataclass(frozen=True)
class LedgerStats:
    released_tokens: int
    released_count: int
    refunded_tokens: int
    refunded_count: int


@dataclass(frozen=True)
class DayStats:
    day: date
    total: int = 0
    delivered: int = 0
    unsuccessful: int = 0
    cost_usd: Decimal = ZERO
    revenue_usd: Decimal = ZERO

    @property
    def success_rate(self) -> float | None:
        finished = self.delivered + self.unsuccessful
        return self.delivered / finished if finished else None


@dataclass(frozen=True)
class QueueStats:
    queued: int
    running: int
    oldest_queued_at: datetime | None
    oldest_age_s: float | None
    broker: dict[str, Any] | None  # очереди Celery из health; None — брокер не ответил


@dataclass(frozen=True)
class ErrorGroupRow:
    group_id: int
    title: str
    source: str
    count: int


@dataclass(frozen=True)
class ErrorStats:
    total: int
    groups: list[ErrorGroupRow]


@dataclass(frozen=True)
class Rates:
    stars_usd: Decimal
    tokens_per_usd: Decimal


@dataclass
class OverviewReport:
    period: Period
    rates: Rates
    users: UserStats
    models: list[ModelStats]
    revenue: RevenueStats
    ledger: LedgerStats
    days: list[DayStats]
    queue: QueueStats
    errors: ErrorStats
    generated_at: datetime = field(default_factory=timezone.now)

    @property
    def status_labels(self) -> list[str]:
        return list(JobStatus.labels)

    @property
    def status_totals(self) -> list[int]:
        return [self.status_total(status) for status in JobStatus.values]

    @property
    def jobs_total(self) -> int:
        return sum(m.total for m in self.models)

    def status_total(self, status: str) -> int:
        return sum(m.by_status[status] for m in self.models)

    @property
    def success_rate(self) -> float | None:
        finished = sum(m.finished for m in self.models)
        return self.status_total(JobStatus.DELIVERED) / finished if finished else None

    @property
    def cost_usd(self) -> Decimal:
        return sum((m.cost_usd for m in self.models), ZERO)

    @property
    def attributed_revenue_usd(self) -> Decimal:
        return sum((m.revenue_usd for m in self.models), ZERO)

    @property
    def margin_usd(self) -> Decimal:
        return self.attributed_revenue_usd - self.cost_usd


class Percentiles(Aggregate):
    """percentile_cont PostgreSQL с массивом долей: непрерывные перцентили, NULL не учитываются."""

    function = "percentile_cont"
    template = "%(function)s(ARRAY[%(fractions)s]::float8[]) WITHIN GROUP (ORDER BY %(expressions)s)"
    output_field = ArrayField(FloatField())

    def __init__(self, expression: Any, *, fractions: tuple[float, ...], **extra: Any) -> None:
        super().__init__(expression, fractions=", ".join(str(float(f)) for f in fractions), **extra)


def dashboard_tz() -> ZoneInfo:
    return ZoneInfo(settings.DASHBOARD_TIME_ZONE)


def overview_period(*, key: str | None, now: datetime | None = None) -> Period:
    """Период по ключу ?period=; неизвестный ключ — 7 дней."""
    chosen = key if key is not None and key in PERIODS else DEFAULT_PERIOD
    now = now or timezone.now()
    first = now.astimezone(dashboard_tz()).date() - timedelta(days=PERIODS[chosen] - 1)
    start = datetime.combine(first, time.min, tzinfo=dashboard_tz())
    days = tuple(first + timedelta(days=i) for i in range(PERIODS[chosen]))
    return Period(key=chosen, start=start, end=now, days=days)


def overview_rates() -> Rates:
    """Курсы из настроек цен (правятся в админке); строки нет — значения по умолчанию модели."""
    row = PricingSettings.objects.filter(pk=1).first() or PricingSettings()
    return Rates(stars_usd=Decimal(row.stars_usd_rate), tokens_per_usd=Decimal(row.tokens_per_usd))


def _jobs_in(period: Period) -> QuerySet[GenerationJob]:
    return GenerationJob.objects.filter(created_at__gte=period.start, created_at__lt=period.end)


def overview_users(*, period: Period) -> UserStats:
    """Новые (created_at) и активные: апдейт (last_seen_at) или задание за период."""
    in_period = Q(last_seen_at__gte=period.start, last_seen_at__lt=period.end)
    had_job = Exists(_jobs_in(period).filter(user_id=OuterRef("pk")))
    row = TelegramUser.objects.aggregate(
        new=Count("pk", filter=Q(created_at__gte=period.start, created_at__lt=period.end)),
        active=Count("pk", filter=in_period | Q(had_job)),
    )
    return UserStats(new=row["new"], active=row["active"])


def overview_models(*, period: Period, rates: Rates) -> list[ModelStats]:
    """По модели: задания по статусам, списано токенов, себестоимость доставленных (p50/p95 — отдельно)."""
    by_status = {f"n_{status}": Count("pk", filter=Q(status=status)) for status in JobStatus.values}
    rows = (
        _jobs_in(period)
        .values("model_id", "model__slug", "model__name_ru")
        .annotate(
            total=Count("pk"),
            charged_tokens=Sum("charged"),
            cost=Sum("cost_usd", filter=Q(status=JobStatus.DELIVERED)),
            **by_status,
        )
        .order_by("-total", "model__slug")
    )
    result = []
    for row in rows:
        counts: dict[str, Any] = dict(row)  # ключи n_<статус> собраны динамически
        result.append(
            ModelStats(
                model_id=row["model_id"],
                slug=row["model__slug"],
                name=row["model__name_ru"],
                total=row["total"],
                by_status={status: counts[f"n_{status}"] for status in JobStatus.values},
                charged_tokens=row["charged_tokens"] or 0,
                cost_usd=row["cost"] or ZERO,
                revenue_usd=Decimal(row["charged_tokens"] or 0) / rates.tokens_per_usd,
            )
        )
    return result


def overview_durations(*, period: Period) -> dict[int, tuple[float, float]]:
    """p50 и p95 длительности (generated_at − started_at, секунды) по id модели.

    Оба перцентиля — одним агрегатом с массивом долей: одна сортировка на модель, а не две.
    """
    seconds = Extract(
        ExpressionWrapper(F("generated_at") - F("started_at"), output_field=DurationField()), "epoch"
    )
    rows = (
        _jobs_in(period)
        .filter(started_at__isnull=False, generated_at__isnull=False)
        .values("model_id")
        .annotate(p=Percentiles(seconds, fractions=(0.5, 0.95)))
        .order_by()
    )
    return {row["model_id"]: (row["p"][0], row["p"][1]) for row in rows}


def usd_equivalent(*, amount: Decimal, currency: str, rates: Rates) -> Decimal | None:
    """USD-эквивалент: звёзды по stars_usd_rate, USD как есть; RUB/EUR — без курса (None)."""
    if currency == STARS_CURRENCY:
        return amount * rates.stars_usd
    if currency == "USD":
        return amount
    return None


def overview_revenue(*, period: Period, rates: Rates) -> RevenueStats:
    """Платежи по способу и валюте; возвращённые вычитаются (по дате платежа)."""
    rows = (
        Payment.objects.filter(created_at__gte=period.start, created_at__lt=period.end)
        .values("method", "currency")
        .annotate(
            count=Count("pk"),
            gross=Sum("amount"),
            refunded=Sum("amount", filter=Q(status=Payment.Status.REFUNDED)),
        )
        .order_by("method", "currency")
    )
    result = []
    for row in rows:
        net = row["gross"] - (row["refunded"] or ZERO)
        result.append(
            RevenueRow(
                method=row["method"],
                currency=row["currency"],
                count=row["count"],
                gross=row["gross"],
                refunded=row["refunded"] or ZERO,
                usd=usd_equivalent(amount=net, currency=row["currency"], rates=rates),
            )
        )
    return RevenueStats(rows=result)


def overview_ledger(*, period: Period) -> LedgerStats:
    """Токены, вернувшиеся пользователям из холдов (release) и забранные возвратом платежа."""
    kinds = (TransactionKind.RELEASE, TransactionKind.PAYMENT_REFUND)
    is_release = Q(transaction__kind=TransactionKind.RELEASE)
    is_refund = Q(transaction__kind=TransactionKind.PAYMENT_REFUND)
    row = LedgerEntry.objects.filter(
        transaction__created_at__gte=period.start,
        transaction__created_at__lt=period.end,
        transaction__kind__in=kinds,
        account__kind=Account.Kind.USER,
        bucket=LedgerEntry.Bucket.AVAILABLE,
    ).aggregate(
        released=Sum(Abs("amount"), filter=is_release),
        released_count=Count("transaction_id", filter=is_release, distinct=True),
        refunded=Sum(Abs("amount"), filter=is_refund),
        refunded_count=Count("transaction_id", filter=is_refund, distinct=True),
    )
    return LedgerStats(
        released_tokens=row["released"] or 0,
        released_count=row["released_count"],
        refunded_tokens=row["refunded"] or 0,
        refunded_count=row["refunded_count"],
    )


def overview_days(*, period: Period) -> list[DayStats]:
    """Ряд по дням: задания (всего, доставлено, неуспех) и себестоимость доставленных."""
    rows = (
        _jobs_in(period)
        .annotate(day=TruncDate("created_at", tzinfo=dashboard_tz()))
        .values("day")
        .annotate(
            total=Count("pk"),
            delivered=Count("pk", filter=Q(status=JobStatus.DELIVERED)),
            unsuccessful=Count("pk", filter=Q(status__in=UNSUCCESSFUL)),
            cost=Sum("cost_usd", filter=Q(status=JobStatus.DELIVERED)),
        )
        .order_by("day")
    )
    found = {row["day"]: row for row in rows}
    return [
        DayStats(
            day=day,
            total=found[day]["total"],
            delivered=found[day]["delivered"],
            unsuccessful=found[day]["unsuccessful"],
            cost_usd=found[day]["cost"] or ZERO,
        )
        if day in found
        else DayStats(day=day)
        for day in period.days
    ]


def overview_days_revenue(*, period: Period, rates: Rates) -> dict[date, Decimal]:
    """Выручка по дням в USD-эквиваленте (только звёзды и USD; см. usd_equivalent)."""
    rows = (
        Payment.objects.filter(
            created_at__gte=period.start, created_at__lt=period.end, currency__in=(STARS_CURRENCY, "USD")
        )
        .exclude(status=Payment.Status.REFUNDED)
        .annotate(day=TruncDate("created_at", tzinfo=dashboard_tz()))
        .values("day", "currency")
        .annotate(amount=Sum("amount"))
    )
    result: dict[date, Decimal] = {}
    for row in rows:
        usd = usd_equivalent(amount=row["amount"], currency=row["currency"], rates=rates) or ZERO
        result[row["day"]] = result.get(row["day"], ZERO) + usd
    return result


def overview_queue(*, now: datetime) -> QueueStats:
    """Задания в очереди и старейшее из них (индекс status, created_at); очереди брокера — из health."""
    row = GenerationJob.objects.filter(status__in=(JobStatus.QUEUED, JobStatus.RUNNING)).aggregate(
        queued=Count("pk", filter=Q(status=JobStatus.QUEUED)),
        running=Count("pk", filter=Q(status=JobStatus.RUNNING)),
        oldest=Min("created_at", filter=Q(status=JobStatus.QUEUED)),
    )
    oldest = row["oldest"]
    return QueueStats(
        queued=row["queued"],
        running=row["running"],
        oldest_queued_at=oldest,
        oldest_age_s=(now - oldest).total_seconds() if oldest else None,
        broker=_broker_queues(),
    )


def _broker_queues() -> dict[str, Any] | None:
    from botapp.ops import health

    # Панель не должна падать из-за брокера: его здоровье видно в /api/health
    try:
        return dict(health.check_queues()["queues"])
    except Exception:
        return None


def overview_errors(*, now: datetime) -> ErrorStats:
    """События ошибок за последние 24 часа по группам, частые сверху."""
    rows = (
        ErrorEvent.objects.filter(created_at__gte=now - ERRORS_WINDOW, created_at__lt=now)
        .values("group_id", "group__title", "group__source")
        .annotate(count=Count("pk"))
        .order_by("-count", "group_id")
    )
    groups = [
        ErrorGroupRow(
            group_id=r["group_id"], title=r["group__title"], source=r["group__source"], count=r["count"]
        )
        for r in rows
    ]
    return ErrorStats(total=sum(g.count for g in groups), groups=groups)


def overview_report(*, period: Period) -> OverviewReport:
    """Все виджеты обзора за период."""
    rates = overview_rates()
    days = overview_days(period=period)
    revenue_by_day = overview_days_revenue(period=period, rates=rates)
    days = [replace(d, revenue_usd=revenue_by_day.get(d.day, ZERO)) for d in days]
    models = overview_models(period=period, rates=rates)
    durations = overview_durations(period=period)
    for model in models:
        model.p50_s, model.p95_s = durations.get(model.model_id, (None, None))
    return OverviewReport(
        period=period,
        rates=rates,
        users=overview_users(period=period),
        models=models,
        revenue=overview_revenue(period=period, rates=rates),
        ledger=overview_ledger(period=period),
        days=days,
        queue=overview_queue(now=period.end),
        errors=overview_errors(now=period.end),
    )
