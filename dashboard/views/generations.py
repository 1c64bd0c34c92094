"""Генерации: список с фильтрами и миниатюрами; действия персонала — через botapp.generation.staff."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.core.paginator import Paginator
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.decorators.http import require_POST

from botapp.admin.adjust import NonceForm, nonce_new
from botapp.billing.errors import InsufficientFunds
from botapp.generation import staff
from botapp.models import GenerationJob
from dashboard.access import PERM_MONEY, View, staff_required
from dashboard.selectors.generations import PAGE_SIZE, JobFilters, job_filter_choices, job_rows, jobs_filtered

# Декоратор с правом на деньги; cast — access.staff_required(perm=…) возвращает Any
money_required = cast(Callable[[View], View], staff_required(perm=PERM_MONEY))


class JobFilterForm(forms.Form):
    model = forms.CharField(required=False)
    status = forms.CharField(required=False)
    error_category = forms.CharField(required=False)
    user = forms.CharField(required=False, label="Пользователь (id или @username)")
    date_from = forms.DateField(required=False, label="с")
    date_to = forms.DateField(required=False, label="по")


# Действие → (уровень сообщения, текст для персонала)
Outcome = tuple[int, str]


def _release(job: GenerationJob, actor: Any, nonce: str) -> Outcome:
    staff.job_release_stuck(job=job, actor=actor)
    return messages.SUCCESS, f"Холд задания #{job.pk} возвращён."


def _redeliver(job: GenerationJob, actor: Any, nonce: str) -> Outcome:
    outcome = staff.job_redeliver(job=job, actor=actor)
    what = "доставка" if outcome == "delivery queued" else "повторная отправка"
    return messages.SUCCESS, f"Задание #{job.pk}: {what} в очереди."


def _rerun(job: GenerationJob, actor: Any, nonce: str) -> Outcome:
    # Без nonce повтор формы не отличить от нового нажатия: вторая компенсация и второе задание
    if not nonce:
        return messages.ERROR, "Не перезапущено: форма устарела, обновите страницу и нажмите ещё раз."
    rerun = staff.job_rerun(job=job, actor=actor, nonce=nonce)
    if rerun.replayed:
        return (
            messages.WARNING,
            f"Эта форма уже была отправлена: задание #{job.pk} перезапущено как #{rerun.job.pk} один раз, "
            "повторно ничего не сделано.",
        )
    return messages.SUCCESS, f"Задание #{job.pk} перезапущено как #{rerun.job.pk} за счёт сервиса."


# Как в админке: действия над заданиями двигают деньги или холды — нужно право на деньги
ACTIONS: dict[str, Callable[[GenerationJob, Any, str], Outcome]] = {
    "release": _release,
    "redeliver": _redeliver,
    "rerun": _rerun,
}
ACTION_LABELS = [
    ("release", "Вернуть холд"),
    ("redeliver", "Доставить ещё раз"),
    ("rerun", "Перезапустить"),
]


@staff_required
def generation_list(request: HttpRequest) -> HttpResponse:
    """Задания по фильтрам: модель, статус, категория ошибки, пользователь, даты."""
    form = JobFilterForm(request.GET or None)
    filters = JobFilters(**form.cleaned_data) if form.is_valid() else JobFilters()
    page = Paginator(jobs_filtered(filters=filters), PAGE_SIZE).get_page(request.GET.get("page"))
    query = request.GET.copy()
    query.pop("page", None)
    context = {
        "form": form,
        "filters": filters,
        "choices": job_filter_choices(),
        "page": page,
        "rows": job_rows(jobs=page.object_list),
        "query": query.urlencode(),
        "can_act": request.user.has_perm(PERM_MONEY),
        "actions": ACTION_LABELS,
        # Одна на страницу: ключ перезапуска — задание + nonce, у разных заданий он и так разный
        "nonce": nonce_new(),
    }
    return render(request, "dashboard/generations.html", context)


@require_POST
@money_required
def generation_action(request: HttpRequest, job_id: int, action: str) -> HttpResponse:
    """Вернуть холд, доставить ещё раз или перезапустить (по nonce формы — один раз); аудит пишет сервис."""
    if action not in ACTIONS:
        raise Http404(action)
    job = get_object_or_404(GenerationJob.objects.select_related("user", "model"), pk=job_id)
    form = NonceForm(request.POST)
    nonce = form.cleaned_data["nonce"] if form.is_valid() else ""
    try:
        messages.add_message(request, *ACTIONS[action](job, request.user, nonce))
    except staff.StaffActionRefused as refused:
        messages.warning(request, f"Действие неприменимо: {refused}")
    except InsufficientFunds as exc:
        messages.error(request, f"Не проведено: {exc}")
    back = request.POST.get("next", "")
    if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
        back = ""
    return redirect(back or "dashboard:generations")
