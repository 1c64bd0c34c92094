"""Ошибки: группы со статусом разбора и последние события (стек и контекст — только чтение)."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db.models import QuerySet
from django.forms.models import BaseInlineFormSet
from django.http import HttpRequest
from django.utils.html import format_html

from botapp.admin.base import ReadOnlyInline
from botapp.models import ErrorEvent, ErrorGroup
from config.observability import redact, redact_data

# У частой ошибки тысячи событий: на странице — только последние
EVENTS_SHOWN = 20


class LatestEventsFormSet(BaseInlineFormSet):  # type: ignore[type-arg]
    def get_queryset(self) -> QuerySet[Any]:
        if not hasattr(self, "_latest"):
            self._latest = super().get_queryset().order_by("-created_at")[:EVENTS_SHOWN]
        return self._latest


class ErrorEventInline(ReadOnlyInline):
    model = ErrorEvent
    formset = LatestEventsFormSet
    fields = ("created_at", "stack_text", "context_text")
    readonly_fields = fields
    verbose_name_plural = f"последние события (до {EVENTS_SHOWN})"

    # Записаны уже без секретов; вырезаем ещё раз — вдруг ключ сменился после записи
    @admin.display(description="стек")
    def stack_text(self, obj: ErrorEvent) -> str:
        return format_html("<pre>{}</pre>", redact(obj.stack))

    @admin.display(description="контекст")
    def context_text(self, obj: ErrorEvent) -> str:
        return format_html("<pre>{}</pre>", redact_data(obj.context))


@admin.register(ErrorGroup)
class ErrorGroupAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("title", "source", "status", "count", "first_seen", "last_seen")
    list_editable = ("status",)
    list_filter = ("status", "source")
    search_fields = ("title", "fingerprint", "source")
    ordering = ("-last_seen",)
    fields = ("title", "source", "fingerprint", "status", "count", "first_seen", "last_seen")
    readonly_fields = ("title", "source", "fingerprint", "count", "first_seen", "last_seen")
    inlines = (ErrorEventInline,)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
