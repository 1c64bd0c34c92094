"""Раздел «Ошибки»: группы по отпечатку, события со стеком и контекстом, смена статуса с аудитом."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import messages
from django.contrib.auth.models import AbstractBaseUser
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_GET, require_POST

from botapp.billing.audit import audit_record
from botapp.models import ErrorEvent, ErrorGroup
from config.observability import redact, redact_data
from dashboard.access import staff_required

PAGE_SIZE = 50
EVENTS_SHOWN = 20


def error_group_list(*, status: str = "", source: str = "") -> QuerySet[ErrorGroup]:
    """Группы с фильтрами; свежие сверху."""
    groups = ErrorGroup.objects.order_by("-last_seen", "-pk")
    if status in ErrorGroup.Status.values:
        groups = groups.filter(status=status)
    if source:
        groups = groups.filter(source=source)
    return groups


def error_group_set_status(*, group_id: int, status: str, actor: AbstractBaseUser) -> ErrorGroup:
    """Сменить статус группы и записать это в журнал действий персонала (одной транзакцией)."""
    with transaction.atomic():
        group = ErrorGroup.objects.select_for_update().get(pk=group_id)
        previous = group.status
        if previous != status:
            # update(), а не save(): last_seen (auto_now) — время ошибки, а не правки статуса
            ErrorGroup.objects.filter(pk=group.pk).update(status=status)
            group.status = status
            audit_record(
                actor=actor,
                action="error_group.status",
                target=group,
                details={"from": previous, "to": status},
            )
    return group


def _event_view(event: ErrorEvent) -> dict[str, Any]:
    # Повторная редакция при показе: старые события могли записаться до новых правил
    return {
        "created_at": event.created_at,
        "stack": redact(event.stack),
        "context": json.dumps(
            redact_data(event.context), ensure_ascii=False, indent=2, sort_keys=True, default=str
        ),
    }


@staff_required
@require_GET
def errors_index(request: HttpRequest) -> HttpResponse:
    """Список групп ошибок с фильтрами по статусу и источнику."""
    status, source = request.GET.get("status", ""), request.GET.get("source", "")
    page = Paginator(error_group_list(status=status, source=source), PAGE_SIZE).get_page(
        request.GET.get("page")
    )
    sources = ErrorGroup.objects.order_by("source").values_list("source", flat=True).distinct()
    context = {
        "page": page,
        "status": status,
        "source": source,
        "statuses": ErrorGroup.Status.choices,
        "sources": list(sources),
    }
    return render(request, "dashboard/errors.html", context)


@staff_required
@require_GET
def errors_detail(request: HttpRequest, pk: int) -> HttpResponse:
    """Группа: последние события со стеком и контекстом (без секретов)."""
    group = get_object_or_404(ErrorGroup, pk=pk)
    events = [_event_view(event) for event in group.events.order_by("-created_at", "-pk")[:EVENTS_SHOWN]]
    context = {
        "group": group,
        "title": redact(group.title),
        "events": events,
        "statuses": ErrorGroup.Status.choices,
    }
    return render(request, "dashboard/errors_detail.html", context)


@staff_required
@require_POST
def errors_status(request: HttpRequest, pk: int) -> HttpResponse:
    """POST смены статуса группы (CSRF — middleware)."""
    status = request.POST.get("status", "")
    if status not in ErrorGroup.Status.values:
        messages.error(request, "Неизвестный статус.")
        return redirect("dashboard:errors-detail", pk=pk)
    get_object_or_404(ErrorGroup, pk=pk)
    group = error_group_set_status(group_id=pk, status=status, actor=request.user)  # type: ignore[arg-type]
    messages.success(request, f"Статус: {group.get_status_display()}.")
    return redirect("dashboard:errors-detail", pk=pk)
