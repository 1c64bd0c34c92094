"""Пользователи Telegram: поиск, баланс только для чтения, бан и корректировка баланса действиями."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet, Value
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils.html import format_html

from botapp.admin.adjust import adjust_balance_view
from botapp.billing.catalog_admin import user_ban_set
from botapp.models import TelegramUser


@admin.register(TelegramUser)
class TelegramUserAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = (
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "balance_available",
        "balance_on_hold",
        "is_banned",
        "is_blocked",
        "created_at",
        "last_seen_at",
    )
    list_filter = ("is_banned", "is_blocked", "language", "is_premium")
    search_fields = ("telegram_id__exact", "username", "first_name", "last_name")
    ordering = ("-created_at",)
    actions = ("adjust_balance", "ban", "unban")
    fields = (
        "telegram_id",
        "username",
        "first_name",
        "last_name",
        "balance_available",
        "balance_on_hold",
        "money_links",
        "is_banned",
        "is_blocked",
        "language",
        "language_code",
        "is_premium",
        "referral_code",
        "start_payload",
        "lava_email",
        "created_at",
        "last_seen_at",
    )
    readonly_fields = tuple(name for name in fields if name != "is_banned")

    def get_queryset(self, request: HttpRequest) -> QuerySet[TelegramUser]:
        queryset: QuerySet[TelegramUser] = super().get_queryset(request)
        return queryset.annotate(
            available_tokens=Coalesce("account__available", Value(0)),
            on_hold_tokens=Coalesce("account__on_hold", Value(0)),
        )

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Пользователей создаёт бот при первом апдейте
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        # Удаление данных — только /delete_me (сохраняет журнал и хэш бонуса)
        return False

    def has_adjust_balance_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.add_ledgertransaction")

    @admin.display(description="доступно", ordering="available_tokens")
    def balance_available(self, obj: Any) -> int:
        return int(obj.available_tokens)

    @admin.display(description="в холде", ordering="on_hold_tokens")
    def balance_on_hold(self, obj: Any) -> int:
        return int(obj.on_hold_tokens)

    @admin.display(description="деньги")
    def money_links(self, obj: TelegramUser) -> str:
        ledger_url = reverse("admin:botapp_ledgertransaction_changelist")
        payments_url = reverse("admin:botapp_payment_changelist")
        return format_html(
            '<a href="{}?user__id__exact={}">проводки</a> · <a href="{}?user__id__exact={}">платежи</a>',
            ledger_url,
            obj.pk,
            payments_url,
            obj.pk,
        )

    def save_model(self, request: HttpRequest, obj: TelegramUser, form: Any, change: bool) -> None:
        # Редактируется только бан: через сервис, чтобы он попал в аудит
        if "is_banned" in form.changed_data:
            user_ban_set(user=obj, banned=obj.is_banned, actor=request.user)

    @admin.action(description="Корректировка баланса…", permissions=["adjust_balance"])
    def adjust_balance(self, request: HttpRequest, queryset: QuerySet[TelegramUser]) -> HttpResponse | None:
        return adjust_balance_view(self, request, queryset, user_of=lambda user: user)

    @admin.action(description="Забанить", permissions=["change"])
    def ban(self, request: HttpRequest, queryset: QuerySet[TelegramUser]) -> None:
        changed = sum(user_ban_set(user=user, banned=True, actor=request.user) for user in queryset)
        self.message_user(request, f"Забанено: {changed}.", messages.SUCCESS)

    @admin.action(description="Разбанить", permissions=["change"])
    def unban(self, request: HttpRequest, queryset: QuerySet[TelegramUser]) -> None:
        changed = sum(user_ban_set(user=user, banned=False, actor=request.user) for user in queryset)
        self.message_user(request, f"Разбанено: {changed}.", messages.SUCCESS)
