"""Общие основы админки: модели только для чтения и сохранение через сервис с аудитом."""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.db import models
from django.http import HttpRequest

from botapp.billing.catalog_admin import staff_save


class ReadOnlyAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Журналы и платежи: смотреть можно, добавить, изменить и удалить — нет."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class ReadOnlyInline(admin.TabularInline):  # type: ignore[type-arg]
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


class AuditedAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    """Настройки денег: сохранение — через сервис, который пишет «было → стало» в аудит.

    Удаление выключено: пакеты и промокоды связаны со счетами и погашениями — их выключают флагом.
    """

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: models.Model, form: Any, change: bool) -> None:
        staff_save(obj=obj, actor=request.user)
