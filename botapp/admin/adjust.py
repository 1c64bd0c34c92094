"""Действие «Корректировка баланса»: промежуточная форма → ledger.adjust.

Ключ идемпотентности — из одноразового nonce формы: повторная отправка той же формы (двойной
клик, «назад» и снова «отправить») находит уже проведённую проводку и ничего не меняет.
NonceForm и nonce_new — тот же механизм для форм панели: корректировка, перезапуск, сообщения.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.contrib.admin import helpers
from django.core.validators import RegexValidator
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from botapp.billing import ledger
from botapp.billing.errors import InsufficientFunds
from botapp.models import Account, TelegramUser

# Защита от опечатки в лишний ноль; больше — несколькими корректировками
MAX_ADJUSTMENT = 1_000_000


def nonce_new() -> str:
    """Одноразовый ключ новой формы: входит в ключ идемпотентности действия."""
    return secrets.token_hex(16)


class NonceForm(forms.Form):
    """Форма с одноразовым nonce: повторная отправка той же формы находит уже сделанное по ключу."""

    nonce = forms.CharField(
        widget=forms.HiddenInput,
        validators=[RegexValidator(r"^[0-9a-f]{32}$")],
        error_messages={"required": "форма устарела, обновите страницу"},
    )


class AdjustBalanceForm(NonceForm):
    amount = forms.IntegerField(
        label="Сумма, токенов",
        min_value=-MAX_ADJUSTMENT,
        max_value=MAX_ADJUSTMENT,
        help_text="положительная — начислить, отрицательная — списать",
    )
    reason = forms.CharField(
        label="Причина", max_length=500, widget=forms.Textarea(attrs={"rows": 3}), help_text="обязательно"
    )

    def clean_amount(self) -> int:
        amount: int = self.cleaned_data["amount"]
        if amount == 0:
            raise forms.ValidationError("Сумма не может быть нулём.")
        return amount

    def clean_reason(self) -> str:
        reason: str = self.cleaned_data["reason"].strip()
        if not reason:
            raise forms.ValidationError("Укажите причину.")
        return reason


def user_balance(user: TelegramUser) -> tuple[int, int]:
    """(доступно, в холде) без создания счёта: страница просмотра ничего не пишет."""
    row = Account.objects.filter(user=user).values_list("available", "on_hold").first()
    return row if row is not None else (0, 0)


def adjustment_key(*, user: TelegramUser, nonce: str) -> str:
    return f"admin-adjust:{user.pk}:{nonce}"


def adjust_balance_view(
    modeladmin: admin.ModelAdmin,  # type: ignore[type-arg]
    request: HttpRequest,
    queryset: QuerySet[Any],
    user_of: Callable[[Any], TelegramUser | None],
) -> HttpResponse | None:
    """Показать форму или провести корректировку одному выбранному пользователю."""
    selected = list(queryset[:2])
    user = user_of(selected[0]) if len(selected) == 1 else None
    if user is None:
        modeladmin.message_user(
            request, "Корректировка — ровно одному пользователю: выберите одну строку.", messages.ERROR
        )
        return None
    form = AdjustBalanceForm(request.POST if "apply" in request.POST else None)
    if form.is_bound and form.is_valid():
        data = form.cleaned_data
        try:
            posted = ledger.adjust(
                user=user,
                amount=data["amount"],
                actor=request.user,
                reason=data["reason"],
                key=adjustment_key(user=user, nonce=data["nonce"]),
            )
        except InsufficientFunds:
            form.add_error(
                "amount",
                f"Недостаточно доступных токенов: доступно {user_balance(user)[0]}. Баланс не изменён.",
            )
            modeladmin.message_user(
                request, "Корректировка не проведена: не хватает токенов.", messages.ERROR
            )
        else:
            if posted.replayed:
                modeladmin.message_user(
                    request,
                    f"Эта форма уже была отправлена: проводка #{posted.transaction.pk} проведена ранее, "
                    "повторно ничего не изменено.",
                    messages.WARNING,
                )
            else:
                modeladmin.message_user(
                    request,
                    f"Баланс {user} изменён на {data['amount']:+d}; доступно {posted.available} "
                    f"(проводка #{posted.transaction.pk}).",
                    messages.SUCCESS,
                )
            return None
    if not form.is_bound:
        form = AdjustBalanceForm(initial={"nonce": nonce_new()})
    context = {
        **modeladmin.admin_site.each_context(request),
        "title": "Корректировка баланса",
        "opts": modeladmin.model._meta,
        "form": form,
        "target": user,
        "balance": user_balance(user),
        "selected": selected,
        "action": request.POST.get("action", ""),
        "action_checkbox_name": helpers.ACTION_CHECKBOX_NAME,
    }
    return TemplateResponse(request, "admin/botapp/adjust_balance.html", context)
