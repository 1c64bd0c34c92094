"""Обзор: KPI за период, графики по дням и по моделям (SVG на сервере)."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.utils.safestring import SafeString

from dashboard.access import staff_required
from dashboard.charts import BAD, GOOD, Series, svg_bar_chart, svg_hbar_chart, svg_line_chart
from dashboard.selectors.overview import OverviewReport, overview_period, overview_report

PERIOD_LINKS = (("today", "Сегодня"), ("7", "7 дней"), ("30", "30 дней"))


def _usd(value: float) -> str:
    return f"${value:,.2f}".replace(",", " ")


def _percent(value: float) -> str:
    return f"{value:.0%}"


def overview_charts(report: OverviewReport) -> dict[str, SafeString]:
    """Графики страницы из готового отчёта (без запросов к БД)."""
    labels = [day.strftime("%d.%m") for day in report.period.days]
    days = report.days
    return {
        "jobs": svg_bar_chart(title="Генерации по дням", labels=labels, values=[d.total for d in days]),
        "money": svg_line_chart(
            title="Выручка и себестоимость по дням, USD",
            labels=labels,
            series=[
                Series("выручка", [float(d.revenue_usd) for d in days], GOOD),
                Series("себестоимость", [float(d.cost_usd) for d in days], BAD),
            ],
            fmt=_usd,
        ),
        "success": svg_line_chart(
            title="Доля успешных по дням",
            labels=labels,
            series=[Series("успех", [d.success_rate for d in days])],
            top=1.0,
            fmt=_percent,
        ),
        "models": svg_hbar_chart(
            title="Генерации по моделям", bars=[(m.name, m.total) for m in report.models]
        ),
        "margin": svg_hbar_chart(
            title="Валовая маржа по моделям, USD",
            bars=[(m.name, float(m.margin_usd)) for m in report.models],
            fmt=_usd,
        ),
    }


@staff_required
def overview(request: HttpRequest) -> HttpResponse:
    """Главная панели: ?period=today|7|30."""
    report = overview_report(period=overview_period(key=request.GET.get("period")))
    context = {"report": report, "charts": overview_charts(report), "period_links": PERIOD_LINKS}
    return render(request, "dashboard/overview.html", context)
