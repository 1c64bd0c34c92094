"""Доступ к панели: только персонал (с подтверждённым TOTP при STAFF_2FA_REQUIRED) и права на деньги."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.contrib.auth.views import redirect_to_login
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse

# Права сверх is_staff (выдаются в админке группам или людям)
PERM_MONEY = "botapp.add_ledgertransaction"  # корректировка баланса, возвраты
PERM_BROADCAST = "dashboard.send_broadcast"  # рассылки
PERM_BAN = "botapp.change_telegramuser"  # бан и разбан — то же право, что в админке

View = Callable[..., HttpResponse]


def staff_verified(request: HttpRequest) -> bool:
    user = request.user
    if not (user.is_authenticated and user.is_active and user.is_staff):
        return False
    if settings.STAFF_2FA_REQUIRED:
        return bool(getattr(user, "is_verified", lambda: False)())
    return True


def staff_required(view: View | None = None, *, perm: str | None = None) -> Any:
    """Декоратор страниц панели: не персонал — на вход; нет права — 403."""

    def decorate(func: View) -> View:
        @functools.wraps(func)
        def wrapper(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            if not staff_verified(request):
                return redirect_to_login(request.get_full_path(), settings.LOGIN_URL)
            if perm and not request.user.has_perm(perm):
                raise PermissionDenied(perm)
            return func(request, *args, **kwargs)

        return wrapper

    return decorate(view) if view is not None else decorate
