"""Поддержка: входящие, диалог с ответом (текст или фото), файлы из Telegram, привязка Telegram сотрудника."""

from __future__ import annotations

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_POST
from telegram.error import TelegramError

from botapp.admin.adjust import NonceForm, nonce_new
from botapp.models import ChatLogEntry
from dashboard.access import staff_required
from dashboard.models import SupportThread
from dashboard.selectors.support import staff_profile_of, support_dialog, support_threads
from dashboard.services import staff_link
from dashboard.services.support import (
    MEDIA_MAX_BYTES,
    REPLY_CAPTION_LIMIT,
    REPLY_TEXT_LIMIT,
    support_media_fetch,
    support_thread_mark_read,
    support_thread_set_resolved,
)
from dashboard.views.users import draft_keep, draft_pop, send_and_report

PHOTO_MAX_BYTES = 10 * 1024 * 1024  # лимит sendPhoto


class ReplyForm(NonceForm):
    text = forms.CharField(
        label="Ответ", max_length=REPLY_TEXT_LIMIT, required=False, widget=forms.Textarea(attrs={"rows": 4})
    )
    photo = forms.ImageField(label="Фото", required=False)

    def clean(self) -> dict[str, object]:
        cleaned = super().clean() or {}
        text, photo = cleaned.get("text") or "", cleaned.get("photo")
        if not text.strip() and photo is None:
            raise forms.ValidationError("Нужен текст или фото.")
        if photo is not None and len(text) > REPLY_CAPTION_LIMIT:
            raise forms.ValidationError(f"Подпись к фото — не длиннее {REPLY_CAPTION_LIMIT} символов.")
        if photo is not None and photo.size > PHOTO_MAX_BYTES:
            raise forms.ValidationError("Фото больше 10 МБ.")
        return cleaned


@staff_required
def support_inbox(request: HttpRequest) -> HttpResponse:
    """Ветки по последней активности, с непрочитанными."""
    status = request.GET.get("status", SupportThread.Status.OPEN)
    if status not in SupportThread.Status.values:
        status = ""
    context = {"threads": support_threads(status=status), "status": status, "statuses": SupportThread.Status}
    return render(request, "dashboard/support.html", context)


@staff_required
def support_thread(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Диалог и форма ответа."""
    thread = get_object_or_404(SupportThread.objects.select_related("user", "resolved_by"), pk=thread_id)
    everything = request.GET.get("all") == "1"
    context = {
        "thread": thread,
        "entries": support_dialog(thread=thread, everything=everything),
        "everything": everything,
        "form": ReplyForm(initial={"text": draft_pop(request, user=thread.user), "nonce": nonce_new()}),
    }
    return render(request, "dashboard/support_thread.html", context)


@require_POST
@staff_required
def support_reply_view(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Ответ пользователю через бота (общий лимитер), с автором-сотрудником; одна отправка на форму."""
    thread = get_object_or_404(SupportThread.objects.select_related("user"), pk=thread_id)
    form = ReplyForm(request.POST, request.FILES)
    if not form.is_valid():
        draft_keep(request, user=thread.user, text=request.POST.get("text", ""))
        problems = [str(error) for errors in form.errors.values() for error in errors]
        messages.error(request, "Не отправлено: " + " ".join(problems))
        return redirect("dashboard:support_thread", thread_id=thread.pk)
    photo = form.cleaned_data.get("photo")
    send_and_report(
        request,
        user=thread.user,
        text=form.cleaned_data["text"].strip(),
        nonce=form.cleaned_data["nonce"],
        photo=photo.read() if photo else None,
    )
    return redirect("dashboard:support_thread", thread_id=thread.pk)


@require_POST
@staff_required
def support_read(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Отметить прочитанной."""
    thread = get_object_or_404(SupportThread, pk=thread_id)
    support_thread_mark_read(thread=thread, staff=request.user)
    return redirect("dashboard:support_thread", thread_id=thread.pk)


@require_POST
@staff_required
def support_resolve(request: HttpRequest, thread_id: int) -> HttpResponse:
    """Решена (resolved=1) или открыть снова (resolved=0)."""
    thread = get_object_or_404(SupportThread, pk=thread_id)
    resolved = request.POST.get("resolved") == "1"
    support_thread_set_resolved(thread=thread, staff=request.user, resolved=resolved)
    messages.success(request, "Ветка решена." if resolved else "Ветка снова открыта.")
    return redirect("dashboard:support_thread", thread_id=thread.pk)


@staff_required
def support_media(request: HttpRequest, entry_id: int) -> HttpResponse:
    """Файл сообщения из Telegram (getFile через бота) — только персоналу."""
    entry = get_object_or_404(ChatLogEntry.objects.exclude(file_id=""), pk=entry_id)
    try:
        media = support_media_fetch(entry=entry)
    except TelegramError as exc:
        raise Http404(f"Telegram не отдал файл: {exc}") from exc
    if len(media.data) > MEDIA_MAX_BYTES:
        raise Http404("файл больше 20 МБ")
    response = HttpResponse(media.data, content_type=media.content_type)
    # Имя не пустое (у сервиса есть запасное): «or» — только для типа
    disposition = content_disposition_header(not media.inline, media.filename)
    response["Content-Disposition"] = disposition or "attachment"
    response["Cache-Control"] = "private, max-age=3600"
    response["X-Content-Type-Options"] = "nosniff"
    # Файл прислал пользователь: даже открытый напрямую в origin панели, он не исполнит ничего
    response["Content-Security-Policy"] = "sandbox; default-src 'none'"
    return response


@staff_required
def staff_link_page(request: HttpRequest) -> HttpResponse:
    """Привязка Telegram сотрудника: POST создаёт одноразовый код на 15 минут."""
    profile = staff_profile_of(user_id=int(request.user.pk or 0))
    if request.method == "POST":
        profile = staff_link.staff_link_code_create(staff=request.user)
    link = staff_link.staff_link_url(profile=profile) if profile and profile.link_code else ""
    return render(
        request,
        "dashboard/support_link.html",
        {"profile": profile, "link": link, "payload_prefix": staff_link.PAYLOAD_PREFIX},
    )
