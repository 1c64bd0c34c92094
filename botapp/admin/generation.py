"""Задания генерации: фильтры, миниатюры, промпт, тайминги, холд; действия — через сервисы."""

from __future__ import annotations

from typing import Any

from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils.html import format_html

from botapp.admin.base import ReadOnlyAdmin, ReadOnlyInline
from botapp.generation import staff
from botapp.models import GenerationJob, GenerationSettings, JobOutput

THUMBNAIL_TTL_S = 3600


def _thumbnail(output: JobOutput, size: int) -> str:
    if not output.storage_key or output.job.kind != "image":
        return "—"
    from botapp.providers.storage import media_storage

    try:
        url = media_storage().signed_url(kind="image", key=output.storage_key, expires_s=THUMBNAIL_TTL_S)
    except Exception:
        return "—"
    return format_html(
        '<img src="{}" style="max-width:{}px;max-height:{}px" loading="lazy">', url, size, size
    )


class JobOutputInline(ReadOnlyInline):
    model = JobOutput
    fields = ("index", "status", "thumbnail", "mime_type", "width", "height", "size_bytes", "error_category")
    readonly_fields = fields

    @admin.display(description="миниатюра")
    def thumbnail(self, obj: JobOutput) -> str:
        return _thumbnail(obj, 160)


@admin.register(GenerationJob)
class GenerationJobAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "user",
        "model",
        "status",
        "error_category",
        "price",
        "charged",
        "created_at",
        "took",
    )
    list_filter = ("status", "model", "kind", "error_category", "created_at")
    search_fields = ("user__telegram_id", "user__username", "prompt")
    list_select_related = ("user", "model")
    date_hierarchy = "created_at"
    inlines = (JobOutputInline,)
    actions = ("release_stuck_hold", "redeliver", "rerun")
    readonly_fields = (
        "user", "model", "kind", "status", "prompt", "params", "reference_file_ids", "source_job", "price",
        "charged", "cost_usd", "hold", "attempts", "deadline", "lease_until", "provider_started",
        "operation_name", "next_poll_at", "published_at", "error_category", "error_message", "created_at",
        "started_at", "generated_at", "delivered_at", "finished_at",
    )  # fmt: skip

    @admin.display(description="длительность")
    def took(self, obj: GenerationJob) -> str:
        if obj.started_at and obj.generated_at:
            return f"{(obj.generated_at - obj.started_at).total_seconds():.1f} с"
        return "—"

    def _run(self, request: HttpRequest, queryset: QuerySet[GenerationJob], action: Any, done: str) -> None:
        ok = 0
        for job in queryset.select_related("user", "model"):
            try:
                action(job=job, actor=request.user)
                ok += 1
            except staff.StaffActionRefused as refused:
                self.message_user(request, f"#{job.pk}: {refused}", messages.WARNING)
        if ok:
            self.message_user(request, f"{done}: {ok}.", messages.SUCCESS)

    def has_staff_action_permission(self, request: HttpRequest) -> bool:
        return bool(request.user.is_superuser or request.user.has_perm("botapp.add_ledgertransaction"))

    @admin.action(description="Вернуть холд зависшего задания", permissions=["staff_action"])
    def release_stuck_hold(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        self._run(request, queryset, staff.job_release_stuck, "Холды возвращены")

    @admin.action(description="Доставить результат ещё раз", permissions=["staff_action"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        self._run(request, queryset, staff.job_redeliver, "Доставка поставлена в очередь")

    @admin.action(
        description="Перезапустить как новое задание (за счёт сервиса)", permissions=["staff_action"]
    )
    def rerun(self, request: HttpRequest, queryset: QuerySet[GenerationJob]) -> None:
        self._run(request, queryset, staff.job_rerun, "Перезапущено")


@admin.register(GenerationSettings)
class GenerationSettingsAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    list_display = ("__str__", "daily_cost_cap_usd", "provider_429_alert_threshold", "updated_at")

    def has_add_permission(self, request: HttpRequest) -> bool:
        return not GenerationSettings.objects.exists()

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def save_model(self, request: HttpRequest, obj: GenerationSettings, form: Any, change: bool) -> None:
        from botapp.billing.catalog_admin import staff_save

        obj.pk = 1
        staff_save(obj=obj, actor=request.user)
