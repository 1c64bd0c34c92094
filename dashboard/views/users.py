"""Пользователи: поиск, карточка и действия (корректировка баланса, бан, сообщение от поддержки)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django import forms
from django.contrib import messages
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from telegram.error import TelegramError

from botapp.admin.adjust import AdjustBalanceForm, nonce_new
from botapp.billing import ledger
from botapp.billing.catalog_admin import user_ban_set
from botapp.billing.errors import InsufficientFunds
from botapp.models import TelegramUser
from botapp.telegram.sender import RecipientBlocked, SendDeferred
from dashboard.access import PERM_BAN, PERM_MONEY, View, staff_required
from dashboard.selectors.users import user_card, users_search
from dashboard.services.support import support_reply

# Декораторы с правом на деньги и на бан; cast — access.staff_required(perm=…) возвращает Any
money_required = cast(Callable[[View], View], staff_required(perm=PERM_MONEY))
ban_required = cast(Callable[[View], View], staff_required(perm=PERM_BAN))


class MessageForm(forms.Form):
    text = forms.CharField(label="Текст", max_length=4096, widget=forms.Textarea(attrs={"rows": 3}))


def _page(request: HttpRequest) -> int:
    raw = request.GET.get("page", "0")
    return max(int(raw), 0) if raw.isdigit() else 0


@staff_required
def user_list(request: HttpRequest) -> HttpResponse:
    """Поиск по Telegram id, @username или имени."""
    query = request.GET.get("q", "")
    return render(request, "dashboard/users.html", {"query": query, "users": users_search(query=query)})


@staff_required
def user_detail(request: HttpRequest, user_id: int) -> HttpResponse:
    """Карточка пользователя."""
    user = get_object_or_404(TelegramUser, pk=user_id)
    context = {
        "card": user_card(user=user, ledger_page=_page(request)),
        "adjust_form": AdjustBalanceForm(initial={"nonce": nonce_new()}),
        "message_form": MessageForm(),
        "can_adjust": request.user.has_perm(PERM_MONEY),
        "can_ban": request.user.has_perm(PERM_BAN),
    }
    return render(request, "dashboard/users_detail.html", context)


@require_POST
@money_required
def user_adjust(request: HttpRequest, user_id: int) -> HttpResponse:
    """Корректировка баланса; nonce формы — ключ идемпотентности (повторная отправка ничего не меняет)."""
    user = get_object_or_404(TelegramUser, pk=user_id)
    form = AdjustBalanceForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Корректировка не проведена: {_errors(form)}")
        return redirect("dashboard:user", user_id=user.pk)
    data = form.cleaned_data
    try:
        posted = ledger.adjust(
            user=user,
            amount=data["amount"],
            actor=request.user,
            reason=data["reason"],
            key=f"dashboard-adjust:{user.pk}:{data['nonce']}",
        )
    except InsufficientFunds:
        messages.error(request, "Списание больше доступного остатка: баланс не может уйти в минус.")
        return redirect("dashboard:user", user_id=user.pk)
    if posted.replayed:
        messages.warning(request, "Эта форма уже была отправлена: корректировка проведена один раз.")
    else:
        messages.success(
            request, f"Корректировка {data['amount']:+d} проведена, доступно {posted.available}."
        )
    return redirect("dashboard:user", user_id=user.pk)


@require_POST
@ban_required
def user_ban(request: HttpRequest, user_id: int) -> HttpResponse:
    """Бан (banned=1) или разбан (banned=0); право — как в админке (botapp.change_telegramuser)."""
    user = get_object_or_404(TelegramUser, pk=user_id)
    banned = request.POST.get("banned") == "1"
    changed = user_ban_set(user=user, banned=banned, actor=request.user)
    if not changed:
        messages.info(request, "Состояние не изменилось.")
    else:
        messages.success(request, "Пользователь заблокирован." if banned else "Пользователь разблокирован.")
    return redirect("dashboard:user", user_id=user.pk)


@require_POST
@staff_required
def user_message(request: HttpRequest, user_id: int) -> HttpResponse:
    """Сообщение пользователю от поддержки через бота."""
    user = get_object_or_404(TelegramUser, pk=user_id)
    form = MessageForm(request.POST)
    if not form.is_valid():
        messages.error(request, f"Сообщение не отправлено: {_errors(form)}")
    else:
        send_and_report(request, user=user, text=form.cleaned_data["text"])
    return redirect("dashboard:user", user_id=user.pk)


def send_and_report(
    request: HttpRequest, *, user: TelegramUser, text: str, photo: bytes | None = None
) -> bool:
    """Отправить через сервис и объяснить персоналу исход (общий для карточки и поддержки)."""
    try:
        support_reply(user=user, staff=request.user, text=text, photo=photo)
    except RecipientBlocked:
        messages.error(request, "Не доставлено: пользователь заблокировал бота (blocked).")
        return False
    except SendDeferred as deferred:
        messages.error(request, f"Лимит Telegram: повторите через {deferred.retry_after:.0f} с.")
        return False
    except TelegramError as exc:
        messages.error(request, f"Telegram отказал: {exc}")
        return False
    messages.success(request, "Отправлено.")
    return True


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(str(e) for e in errs)}" for field, errs in form.errors.items())
