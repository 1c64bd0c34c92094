"""Пользователи: поиск, карточка и действия (корректировка баланса, бан, сообщение от поддержки)."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from django import forms
from django.contrib import messages
from django.core.cache import cache
from django.http import HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST
from telegram.error import BadRequest, NetworkError, TelegramError

from botapp.admin.adjust import AdjustBalanceForm, NonceForm, nonce_new
from botapp.billing import ledger
from botapp.billing.catalog_admin import user_ban_set
from botapp.billing.errors import InsufficientFunds
from botapp.models import TelegramUser
from botapp.telegram.sender import RecipientBlocked, SendDeferred
from dashboard.access import PERM_BAN, PERM_MONEY, View, staff_required
from dashboard.selectors.users import user_card, users_search
from dashboard.services.support import REPLY_TEXT_LIMIT, support_reply

# Декораторы с правом на деньги и на бан; cast — access.staff_required(perm=…) возвращает Any
money_required = cast(Callable[[View], View], staff_required(perm=PERM_MONEY))
ban_required = cast(Callable[[View], View], staff_required(perm=PERM_BAN))
# Сколько помнится отправленная форма сообщения: повтор той же формы (двойной клик) не шлёт второй раз
SEND_ONCE_S = 600


class MessageForm(NonceForm):
    text = forms.CharField(
        label="Текст", max_length=REPLY_TEXT_LIMIT, widget=forms.Textarea(attrs={"rows": 3})
    )


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
        "message_form": MessageForm(initial={"text": draft_pop(request, user=user), "nonce": nonce_new()}),
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
        draft_keep(request, user=user, text=request.POST.get("text", ""))
        messages.error(request, f"Сообщение не отправлено: {_errors(form)}")
    else:
        data = form.cleaned_data
        send_and_report(request, user=user, text=data["text"], nonce=data["nonce"])
    return redirect("dashboard:user", user_id=user.pk)


def send_and_report(
    request: HttpRequest, *, user: TelegramUser, text: str, nonce: str, photo: bytes | None = None
) -> bool:
    """Отправить через сервис и объяснить персоналу исход (общий для карточки и поддержки).

    nonce формы — одна отправка на форму. Неотправленный текст (и текст с неизвестным исходом)
    возвращается в форму через сессию: персонал не набирает его заново.
    """
    once = f"dashboard:support-send:{nonce}"
    if not cache.add(once, 1, timeout=SEND_ONCE_S):
        messages.warning(
            request, "Эта форма уже была отправлена: сообщение уходит один раз, проверьте переписку."
        )
        return False
    try:
        support_reply(user=user, staff=request.user, text=text, photo=photo)
    except RecipientBlocked:
        problem = "Не доставлено: пользователь заблокировал бота (blocked)."
    except SendDeferred as deferred:
        problem = f"Лимит Telegram: повторите через {deferred.retry_after:.0f} с."
    except TelegramError as exc:
        # BadRequest в PTB — тоже NetworkError, но это отказ; сеть и таймаут — сообщение могло дойти
        if isinstance(exc, NetworkError) and not isinstance(exc, BadRequest):
            draft_keep(request, user=user, text=text)
            messages.error(
                request,
                f"Исход неизвестен: Telegram не ответил ({exc}). Сообщение могло дойти — "
                "проверьте переписку, прежде чем отправлять снова.",
            )
            return False
        problem = f"Telegram отказал: {exc}"
    else:
        messages.success(request, "Отправлено.")
        return True
    # Точно не отправлено: та же форма может попробовать снова
    cache.delete(once)
    draft_keep(request, user=user, text=text)
    messages.error(request, problem + (" Текст остался в форме, фото прикрепите заново." if photo else ""))
    return False


def _draft_key(user: TelegramUser) -> str:
    return f"dashboard:draft:{user.pk}"


def draft_keep(request: HttpRequest, *, user: TelegramUser, text: str) -> None:
    """Запомнить неотправленный текст до следующего показа формы этому сотруднику."""
    if text.strip():
        request.session[_draft_key(user)] = text


def draft_pop(request: HttpRequest, *, user: TelegramUser) -> str:
    """Неотправленный текст для формы (один раз)."""
    return str(request.session.pop(_draft_key(user), ""))


def _errors(form: forms.Form) -> str:
    return "; ".join(f"{field}: {' '.join(str(e) for e in errs)}" for field, errs in form.errors.items())
