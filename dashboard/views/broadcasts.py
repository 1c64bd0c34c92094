"""Рассылки: список, форма, карточка с прогрессом, «сначала мне», запуск, пауза, возобновление, отмена."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils import timezone
from django.views.decorators.http import require_POST
from telegram.error import TelegramError

from botapp.models.users import Language
from botapp.telegram.sender import RecipientBlocked, SendDeferred
from dashboard.access import PERM_BROADCAST, View, staff_required
from dashboard.models import Broadcast
from dashboard.selectors.broadcasts import (
    broadcast_audience,
    broadcast_audience_of,
    broadcast_progress,
    broadcasts_recent,
    staff_telegram_id,
)
from dashboard.services import broadcasts as service

IDS_FILE_MAX_BYTES = 2 * 1024 * 1024

broadcast_required = cast(Callable[[View], View], staff_required(perm=PERM_BROADCAST))


class BroadcastForm(forms.Form):
    text = forms.CharField(
        label="Текст (HTML Telegram)",
        required=False,
        widget=forms.Textarea(attrs={"rows": 8, "cols": 80}),
        help_text=(
            "<b>, <i>, <u>, <s>, <a href>, <code>, <pre>, <blockquote>, <tg-spoiler>; "
            "«<» и «&» — как &lt; и &amp;"
        ),
    )
    photo = forms.ImageField(label="Фото", required=False)
    button_text = forms.CharField(label="Кнопка: текст", max_length=64, required=False)
    button_url = forms.URLField(label="Кнопка: ссылка", required=False, assume_scheme="https")
    audience = forms.ChoiceField(label="Аудитория", choices=Broadcast.Audience.choices)
    language = forms.ChoiceField(label="Язык", choices=[("", "—"), *Language.choices], required=False)
    active_days = forms.IntegerField(label="Активны за дней", min_value=1, max_value=3650, required=False)
    ids_text = forms.CharField(
        label="Telegram id", required=False, widget=forms.Textarea(attrs={"rows": 3, "cols": 40})
    )
    ids_file = forms.FileField(label="…или файл с id", required=False)
    scheduled_at = forms.DateTimeField(
        label="Отправить в",
        required=False,
        widget=forms.DateTimeInput(attrs={"type": "datetime-local"}, format="%Y-%m-%dT%H:%M"),
        help_text="пусто — сразу после нажатия «Запустить»",
    )
    send_to_me = forms.BooleanField(label="Сначала прислать мне", required=False, initial=True)

    def clean(self) -> dict[str, Any]:
        cleaned = super().clean() or {}
        photo = cleaned.get("photo")
        for problem in service.broadcast_text_errors(text=cleaned.get("text") or "", with_photo=bool(photo)):
            self.add_error("text", problem)
        if photo is not None and photo.size > service.PHOTO_MAX_BYTES:
            self.add_error("photo", "фото больше 10 МБ")
        if bool(cleaned.get("button_text")) != bool(cleaned.get("button_url")):
            self.add_error("button_url", "у кнопки нужны и текст, и ссылка")
        audience = cleaned.get("audience")
        if audience == Broadcast.Audience.LANGUAGE and not cleaned.get("language"):
            self.add_error("language", "выберите язык")
        if audience == Broadcast.Audience.ACTIVE and not cleaned.get("active_days"):
            self.add_error("active_days", "укажите число дней")
        cleaned["ids"] = self._ids(cleaned) if audience == Broadcast.Audience.IDS else []
        when = cleaned.get("scheduled_at")
        if when is not None and when <= timezone.now():
            self.add_error("scheduled_at", "время уже прошло")
        return cleaned

    def _ids(self, cleaned: dict[str, Any]) -> list[int]:
        raw = cleaned.get("ids_text") or ""
        upload = cleaned.get("ids_file")
        if upload is not None:
            if upload.size > IDS_FILE_MAX_BYTES:
                self.add_error("ids_file", "файл больше 2 МБ")
                return []
            raw += "\n" + upload.read().decode("utf-8", errors="replace")
        try:
            ids = service.broadcast_ids_parse(raw=raw)
        except ValueError as exc:
            self.add_error("ids_text", str(exc))
            return []
        if not ids:
            self.add_error("ids_text", "нужен хотя бы один Telegram id")
        return ids


def _preview(request: HttpRequest, broadcast_id: int) -> None:
    """«Сначала мне» и объяснение исхода персоналу."""
    try:
        service.broadcast_preview_send(broadcast_id=broadcast_id, staff=request.user)
    except service.BroadcastNotLinked as exc:
        messages.error(request, str(exc))
    except RecipientBlocked:
        messages.error(request, "Не доставлено: вы заблокировали бота в Telegram.")
    except SendDeferred as deferred:
        messages.error(request, f"Лимит Telegram: повторите через {deferred.retry_after:.0f} с.")
    except TelegramError as exc:
        messages.error(request, f"Telegram отказал: {exc}")
    else:
        messages.success(request, "Пробное сообщение отправлено вам в Telegram.")


@broadcast_required
def broadcast_list(request: HttpRequest) -> HttpResponse:
    """Последние рассылки."""
    return render(request, "dashboard/broadcasts.html", {"broadcasts": broadcasts_recent()})


@broadcast_required
def broadcast_new(request: HttpRequest) -> HttpResponse:
    """Форма рассылки → черновик (и, если отмечено, пробное сообщение себе)."""
    form = BroadcastForm(request.POST or None, request.FILES or None)
    if request.method == "POST" and form.is_valid():
        data = form.cleaned_data
        photo = data.get("photo")
        try:
            broadcast = service.broadcast_create(
                staff=request.user,
                text=data["text"],
                audience=data["audience"],
                photo=photo.read() if photo else None,
                photo_content_type=photo.content_type if photo else "",
                button_text=data["button_text"],
                button_url=data["button_url"],
                language=data["language"],
                active_days=data["active_days"],
                ids=data["ids"],
                scheduled_at=data["scheduled_at"],
            )
        except service.BroadcastError as exc:
            form.add_error(None, str(exc))
        else:
            messages.success(request, f"Черновик #{broadcast.pk} сохранён.")
            if data["send_to_me"]:
                _preview(request, broadcast.pk)
            return redirect("dashboard:broadcast", broadcast_id=broadcast.pk)
    context = {"form": form, "linked": staff_telegram_id(staff=request.user) is not None}
    return render(request, "dashboard/broadcast_new.html", context)


@broadcast_required
def broadcast_detail(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    """Карточка: сообщение, аудитория, прогресс (страница опрашивает progress раз в 2 с), действия."""
    broadcast = get_object_or_404(Broadcast.objects.select_related("created_by"), pk=broadcast_id)
    draft = broadcast.status in (Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED)
    context = {
        "broadcast": broadcast,
        "progress": broadcast_progress(broadcast_id=broadcast.pk),
        "audience_now": broadcast_audience_of(broadcast=broadcast).count() if draft else None,
        "statuses": Broadcast.Status,
        "status_labels": dict(Broadcast.Status.choices),
    }
    return render(request, "dashboard/broadcast_detail.html", context)


@broadcast_required
def broadcast_progress_json(request: HttpRequest, broadcast_id: int) -> JsonResponse:
    """Прогресс для опроса страницей: статус и счётчики получателей."""
    progress = broadcast_progress(broadcast_id=broadcast_id)
    if progress["status"] is None:
        raise Http404
    return JsonResponse(progress)


@broadcast_required
def broadcast_audience_count(request: HttpRequest) -> JsonResponse:
    """Сколько получателей у аудитории из формы (до сохранения черновика)."""
    form = BroadcastForm(request.GET)
    form.is_valid()
    data = form.cleaned_data
    users = broadcast_audience(
        audience=data.get("audience") or Broadcast.Audience.ALL,
        language=data.get("language") or "",
        active_days=data.get("active_days"),
        ids=data.get("ids") or [],
    )
    return JsonResponse({"count": users.count()})


@require_POST
@broadcast_required
def broadcast_preview(request: HttpRequest, broadcast_id: int) -> HttpResponse:
    """Кнопка «Прислать мне»."""
    get_object_or_404(Broadcast, pk=broadcast_id)
    _preview(request, broadcast_id)
    return redirect("dashboard:broadcast", broadcast_id=broadcast_id)


ACTIONS: dict[str, tuple[Callable[..., Broadcast], str]] = {
    "launch": (service.broadcast_launch, "Рассылка запущена."),
    "pause": (service.broadcast_pause, "Рассылка на паузе."),
    "resume": (service.broadcast_resume, "Рассылка продолжается."),
    "cancel": (service.broadcast_cancel, "Рассылка отменена."),
}


@require_POST
@broadcast_required
def broadcast_action(request: HttpRequest, broadcast_id: int, action: str) -> HttpResponse:
    """Запустить (или запланировать), приостановить, возобновить, отменить."""
    if action not in ACTIONS:
        raise Http404
    get_object_or_404(Broadcast, pk=broadcast_id)
    run, done = ACTIONS[action]
    try:
        broadcast = run(broadcast_id=broadcast_id, actor=request.user)
    except service.BroadcastError as exc:
        messages.error(request, str(exc))
    else:
        scheduled = broadcast.status == Broadcast.Status.SCHEDULED
        messages.success(request, "Рассылка запланирована." if scheduled else done)
    return redirect("dashboard:broadcast", broadcast_id=broadcast_id)
