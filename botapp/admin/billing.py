"""Деньги в админке: журналы и платежи только для чтения; настройки цен, пакеты, промокоды — с аудитом."""

from __future__ import annotations

import csv
import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.utils import timezone
from django.utils.html import format_html

from botapp.admin.adjust import adjust_balance_view
from botapp.admin.base import AuditedAdmin, ReadOnlyAdmin, ReadOnlyInline
from botapp.billing.catalog_admin import payment_lava_refunded, payment_refund
from botapp.billing.errors import RefundRefused
from botapp.models import (
    Account,
    Hold,
    Invoice,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PricingSettings,
    PromoCode,
    PromoRedemption,
    Referral,
    RefundDebt,
    StaffAuditLog,
    TokenPackage,
    WelcomeClaim,
)
from config.observability import redact_data

USER_SEARCH = ("user__telegram_id__exact", "user__username")


class LedgerEntryInline(ReadOnlyInline):
    model = LedgerEntry
    fields = ("account", "bucket", "amount", "balance_after")
    readonly_fields = fields


@admin.register(LedgerTransaction)
class LedgerTransactionAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "kind", "user", "actor", "reason", "idempotency_key")
    list_filter = ("kind", "created_at")
    search_fields = ("idempotency_key", "reason", "reference_id", *USER_SEARCH)
    list_select_related = ("user", "actor")
    date_hierarchy = "created_at"
    inlines = (LedgerEntryInline,)


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("id", "kind", "user", "code", "available", "on_hold", "updated_at")
    list_filter = ("kind",)
    search_fields = ("code", *USER_SEARCH)
    list_select_related = ("user",)
    actions = ("adjust_balance",)

    def has_adjust_balance_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.add_ledgertransaction")

    @admin.action(description="Корректировка баланса…", permissions=["adjust_balance"])
    def adjust_balance(self, request: HttpRequest, queryset: QuerySet[Account]) -> HttpResponse | None:
        # Системные счета не корректируются: у них нет пользователя
        return adjust_balance_view(self, request, queryset, user_of=lambda account: account.user)


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "amount", "status", "captured_amount", "created_at", "settled_at")
    list_filter = ("status",)
    search_fields = ("idempotency_key", "reference_id", "account__user__telegram_id__exact")
    list_select_related = ("account",)


@admin.register(RefundDebt)
class RefundDebtAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "created_at", "account", "kind", "amount", "reserved", "repaid", "repaid_at",
        "reference_type", "reference_id",
    )  # fmt: skip
    list_filter = ("kind", ("repaid_at", admin.EmptyFieldListFilter))
    search_fields = ("idempotency_key", "reference_id", "account__user__telegram_id__exact")
    list_select_related = ("account",)


@admin.register(Invoice)
class InvoiceAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "method", "status", "user", "package", "amount", "currency", "tokens")
    list_filter = ("method", "status")
    search_fields = ("nonce", "external_id", *USER_SEARCH)
    list_select_related = ("user", "package")


# Что прочитает Excel как формулу: такие ячейки экранируем апострофом
_FORMULA_START = re.compile(r"^[=+\-@\t\r]")

PAYMENT_CSV_HEADER = (
    "id", "created", "method", "external_id", "user_telegram_id",
    "amount", "currency", "tokens", "status", "refunded_at",
)  # fmt: skip


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and _FORMULA_START.match(value):
        return "'" + value
    return value


def payment_csv_row(payment: Payment) -> list[Any]:
    return [
        _csv_cell(value)
        for value in (
            payment.pk,
            payment.created_at.isoformat(),
            payment.method,
            payment.external_id,
            payment.user.telegram_id,
            payment.amount,
            payment.currency,
            payment.tokens,
            payment.status,
            payment.refunded_at.isoformat() if payment.refunded_at else "",
        )
    ]


@admin.register(Payment)
class PaymentAdmin(ReadOnlyAdmin):
    list_display = (
        "id", "created_at", "method", "status", "user", "amount", "currency", "tokens",
        "refund_shortfall", "refunded_at",
    )  # fmt: skip
    list_filter = ("method", "status", "created_at")
    search_fields = ("external_id", *USER_SEARCH)
    list_select_related = ("user",)
    date_hierarchy = "created_at"
    actions = ("refund", "mark_lava_refunded", "export_csv")
    # raw — ответ провайдера: показываем только после вырезания секретов
    exclude = ("raw",)
    readonly_fields = ("raw_redacted",)

    def has_refund_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm("botapp.change_payment")

    @admin.display(description="данные провайдера")
    def raw_redacted(self, obj: Payment) -> str:
        return format_html("<pre>{}</pre>", redact_data(obj.raw))

    @admin.action(description="Вернуть (звёзды)", permissions=["refund"])
    def refund(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        for payment in queryset.select_related("user"):
            try:
                payment_refund(payment=payment, actor=request.user)
            except RefundRefused as exc:
                self.message_user(request, f"Платёж #{payment.pk}: возврат отклонён — {exc}", messages.ERROR)
            else:
                self.message_user(request, f"Платёж #{payment.pk}: возвращён.", messages.SUCCESS)

    @admin.action(description="Отметить возврат в кабинете lava.top", permissions=["refund"])
    def mark_lava_refunded(self, request: HttpRequest, queryset: QuerySet[Payment]) -> None:
        for payment in queryset.select_related("user"):
            try:
                outcome = payment_lava_refunded(payment=payment, actor=request.user)
            except RefundRefused as exc:
                self.message_user(request, f"Платёж #{payment.pk}: не отмечен — {exc}", messages.ERROR)
                continue
            referral = " Награда за приглашение по этому платежу отменена." if outcome.reversal else ""
            if outcome.owed:
                # Резерв и потраченное — раздельно: резерв спишется сам, когда холды заданий вернутся
                parts = []
                if outcome.reserved:
                    parts.append(
                        f"{outcome.reserved} в резерве под идущие задания — спишутся, когда их холды вернутся"
                    )
                if outcome.spent:
                    parts.append(f"{outcome.spent} уже потрачены")
                self.message_user(
                    request,
                    f"Платёж #{payment.pk}: отмечен возвращённым, снято токенов: {outcome.taken}; "
                    f"{'; '.join(parts)}. Недостача записана в платёж и долгом пользователя.{referral}",
                    messages.WARNING,
                )
            else:
                self.message_user(
                    request,
                    f"Платёж #{payment.pk}: отмечен возвращённым, снято токенов: {outcome.taken}.{referral}",
                    messages.SUCCESS,
                )

    @admin.action(description="Выгрузить в CSV", permissions=["view"])
    def export_csv(self, request: HttpRequest, queryset: QuerySet[Payment]) -> HttpResponse:
        response = HttpResponse(content_type="text/csv; charset=utf-8")
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="payments-{stamp}.csv"'
        writer = csv.writer(response)
        writer.writerow(PAYMENT_CSV_HEADER)
        for payment in queryset.select_related("user").order_by("created_at", "pk").iterator():
            writer.writerow(payment_csv_row(payment))
        return response


@admin.register(PromoRedemption)
class PromoRedemptionAdmin(ReadOnlyAdmin):
    list_display = ("id", "promo", "user", "created_at")
    search_fields = ("promo__code", *USER_SEARCH)
    list_select_related = ("promo", "user")


@admin.register(Referral)
class ReferralAdmin(ReadOnlyAdmin):
    list_display = ("id", "inviter", "invitee", "created_at", "rewarded_at", "reward_payment", "reversed_at")
    list_filter = (("rewarded_at", admin.EmptyFieldListFilter), ("reversed_at", admin.EmptyFieldListFilter))
    search_fields = ("inviter__telegram_id__exact", "inviter__username", "invitee__telegram_id__exact")
    list_select_related = ("inviter", "invitee")


@admin.register(WelcomeClaim)
class WelcomeClaimAdmin(ReadOnlyAdmin):
    list_display = ("id", "short_hash", "created_at")
    search_fields = ("id_hash",)
    fields = ("short_hash", "created_at")
    readonly_fields = fields

    @admin.display(description="хэш Telegram id")
    def short_hash(self, obj: WelcomeClaim) -> str:
        return f"{obj.id_hash[:12]}…"


@admin.register(StaffAuditLog)
class StaffAuditLogAdmin(ReadOnlyAdmin):
    list_display = ("id", "created_at", "actor", "action", "target_type", "target_id", "target_repr")
    list_filter = ("action", "target_type", "actor")
    search_fields = ("action", "target_id", "target_repr", "actor__username")
    list_select_related = ("actor",)
    date_hierarchy = "created_at"


@admin.register(PricingSettings)
class PricingSettingsAdmin(AuditedAdmin):
    list_display = (
        "__str__", "tokens_per_usd", "markup", "welcome_bonus",
        "referral_inviter_reward", "referral_invitee_reward", "updated_at",
    )  # fmt: skip
    readonly_fields = ("updated_at",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        # Одна строка pk=1 (её создаёт миграция); вторую база не примет
        return super().has_add_permission(request) and not PricingSettings.objects.exists()

    def save_model(self, request: HttpRequest, obj: Any, form: Any, change: bool) -> None:
        obj.pk = 1
        super().save_model(request, obj, form, change)

    def changelist_view(self, request: HttpRequest, extra_context: Any = None) -> HttpResponse:
        # Список из одной строки не нужен: сразу её форма
        if PricingSettings.objects.filter(pk=1).exists():
            return redirect("admin:botapp_pricingsettings_change", 1)
        return super().changelist_view(request, extra_context)


@admin.register(TokenPackage)
class TokenPackageAdmin(AuditedAdmin):
    list_display = ("title_ru", "stars", "tokens", "bonus_percent", "total", "is_enabled", "order")
    list_filter = ("is_enabled",)
    ordering = ("order", "stars")

    @admin.display(description="всего токенов")
    def total(self, obj: TokenPackage) -> int:
        return obj.total_tokens


PROMO_ALPHABET = re.compile(r"^[A-Za-z0-9_-]+$")


class PromoCodeForm(forms.ModelForm):  # type: ignore[type-arg]
    class Meta:
        model = PromoCode
        fields = ("code", "amount", "max_redemptions", "valid_from", "valid_until", "is_active")

    def clean_code(self) -> str:
        code: str = self.cleaned_data["code"].strip()
        if not PROMO_ALPHABET.match(code):
            raise forms.ValidationError("Только латиница, цифры, _ и - (код уходит в ссылку ?start=promo_…).")
        # Код без учёта регистра: храним в нижнем, как его ищет погашение
        return code.lower()

    def clean(self) -> dict[str, Any]:
        data: dict[str, Any] = super().clean() or {}
        start, until = data.get("valid_from"), data.get("valid_until")
        if start and until and until <= start:
            self.add_error("valid_until", "Конец действия должен быть позже начала.")
        limit = data.get("max_redemptions")
        if limit is not None and self.instance.pk and limit < self.instance.redeemed_count:
            self.add_error("max_redemptions", f"Уже погашен {self.instance.redeemed_count} раз.")
        return data


@admin.register(PromoCode)
class PromoCodeAdmin(AuditedAdmin):
    form = PromoCodeForm
    list_display = ("code", "amount", "usage", "valid_from", "valid_until", "is_active", "created_at")
    list_filter = ("is_active",)
    search_fields = ("code",)
    readonly_fields = ("redeemed_count", "created_at")

    @admin.display(description="погашено / лимит")
    def usage(self, obj: PromoCode) -> str:
        return f"{obj.redeemed_count} / {obj.max_redemptions}"
