"""Каталог моделей генерации: правка с аудитом и отметка «цены проверены»."""

from __future__ import annotations

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from botapp.admin.base import AuditedAdmin
from botapp.billing.catalog_admin import price_verify
from botapp.models import GenerationModel


@admin.register(GenerationModel)
class GenerationModelAdmin(AuditedAdmin):
    list_display = (
        "slug",
        "name_ru",
        "kind",
        "provider_model_id",
        "is_enabled",
        "is_default",
        "price_status",
    )
    list_filter = ("kind", "is_enabled", ("price_verified_at", admin.EmptyFieldListFilter))
    search_fields = ("slug", "name_ru", "name_en", "provider_model_id")
    readonly_fields = ("price_verified_at", "price_verified_by")
    actions = ("mark_prices_verified",)

    @admin.display(description="цена", ordering="price_verified_at")
    def price_status(self, obj: GenerationModel) -> str:
        if obj.price_verified_at is None:
            return format_html('<strong style="color:{}">⚠ НЕ ПРОВЕРЕНА</strong>', "#ba2121")
        return format_html(
            "проверена {} ({})", obj.price_verified_at.strftime("%Y-%m-%d"), obj.price_verified_by or "—"
        )

    @admin.action(description="Отметить цены проверенными", permissions=["change"])
    def mark_prices_verified(self, request: HttpRequest, queryset: QuerySet[GenerationModel]) -> None:
        models = list(queryset)
        for model in models:
            price_verify(model=model, actor=request.user)
        self.message_user(request, f"Цены отмечены проверенными: {len(models)}.", messages.SUCCESS)
