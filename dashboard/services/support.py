"""Поддержка: состояние веток, ответы персонала через бота, файлы из Telegram для панели.

Ответ уходит через bot_call — общий лимитер отправок; отправитель сам пишет исходящее
в журнал переписки, поэтому здесь та же строка лишь помечается как ответ поддержки с автором.
"""

from __future__ import annotations

import mimetypes
from dataclasses import dataclass
from typing import Any

from django.core.cache import cache
from django.db import transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from telegram import Message
from telegram.ext import ExtBot

from botapp.billing.audit import audit_record
from botapp.models import ChatLogEntry, TelegramUser
from botapp.telegram.formatting import CAPTION_LIMIT, MESSAGE_LIMIT, escape
from dashboard.models import StaffProfile, SupportThread

# Серия сообщений одного пользователя — одно оповещение персоналу
ALERT_COOLDOWN_S = 300
# getFile Bot API отдаёт файлы до 20 МБ
MEDIA_MAX_BYTES = 20 * 1024 * 1024
# Показывать в браузере — только растровые картинки и mp4: SVG, HTML, XML из документа пользователя
# исполнили бы скрипт в origin панели; всё прочее — скачивание как application/octet-stream
INLINE_TYPES = frozenset({"image/jpeg", "image/png", "image/webp", "image/gif", "video/mp4"})
# Подпись «💬 Поддержка:» и подсказка под ответом занимают место в лимите Telegram: текст сотрудника
# короче лимита с запасом на них (и на эмодзи, которые Telegram считает за два символа)
REPLY_FRAME_RESERVE = 200
REPLY_TEXT_LIMIT = MESSAGE_LIMIT - REPLY_FRAME_RESERVE
REPLY_CAPTION_LIMIT = CAPTION_LIMIT - REPLY_FRAME_RESERVE


@dataclass(frozen=True)
class SupportAlert:
    """Кого оповестить о новом обращении (пусто — пауза после прошлого оповещения)."""

    thread_id: int
    staff_chat_ids: list[int]


@dataclass(frozen=True)
class MediaFile:
    data: bytes
    content_type: str
    filename: str

    @property
    def inline(self) -> bool:
        return self.content_type in INLINE_TYPES


def support_message_received(*, user: TelegramUser, topic: str = "") -> SupportAlert:
    """Сообщение пользователя в поддержку: ветка открыта, +1 непрочитанное, кого оповестить."""
    now = timezone.now()
    with transaction.atomic():
        thread, _created = SupportThread.objects.select_for_update().get_or_create(
            user=user, defaults={"last_activity_at": now}
        )
        thread.unread_count += 1
        thread.status = SupportThread.Status.OPEN
        thread.last_activity_at = thread.last_user_message_at = now
        if topic:
            thread.topic = topic
        thread.save()
    if not cache.add(f"dashboard:support-alert:{thread.pk}", 1, ALERT_COOLDOWN_S):
        return SupportAlert(thread_id=thread.pk, staff_chat_ids=[])
    staff = StaffProfile.objects.filter(
        notify_support=True, telegram_id__isnull=False, user__is_active=True, user__is_staff=True
    )
    return SupportAlert(thread_id=thread.pk, staff_chat_ids=[p.telegram_id for p in staff if p.telegram_id])


def support_reply(*, user: TelegramUser, staff: Any, text: str, photo: bytes | None = None) -> ChatLogEntry:
    """Отправить пользователю текст или фото с подписью от имени поддержки и записать автора.

    Raises: RecipientBlocked — пользователь заблокировал бота; SendDeferred — лимит Telegram,
    повторить позже; telegram.error.TelegramError — Telegram отказал.
    """
    from botapp.telegram.outbound import bot_call

    chat_id = user.telegram_id
    framed = reply_framed(user=user, text=text)

    async def send(bot: ExtBot[Any]) -> Message:
        if photo is not None:
            return await bot.send_photo(chat_id, photo=photo, caption=framed, parse_mode="HTML")
        return await bot.send_message(chat_id, framed, parse_mode="HTML")

    message = bot_call(send)
    return _reply_record(user=user, staff=staff, message=message, text=text)


def reply_framed(*, user: TelegramUser, text: str) -> str:
    """Ответ сотрудника на языке пользователя: видно, что он от поддержки, и как ей ответить.

    Без подписи ответ выглядел как обычное сообщение бота, а ответ на него — как запрос на картинку.
    """
    with translation.override(user.effective_language):
        label, hint = _("💬 Support:"), _("Reply to this message to answer support.")
    body = f"<b>{escape(label)}</b>" + (f"\n{escape(text)}" if text else "")
    return f"{body}\n\n<i>{escape(hint)}</i>"


@transaction.atomic
def _reply_record(*, user: TelegramUser, staff: Any, message: Message, text: str) -> ChatLogEntry:
    now = timezone.now()
    # Отправитель уже записал исходящее (direction=out, тот же message_id): помечаем его, а не дублируем
    entry = ChatLogEntry.objects.filter(
        user=user, direction=ChatLogEntry.Direction.OUT, message_id=message.message_id
    ).first()
    if entry is None:
        entry = ChatLogEntry(user=user, direction=ChatLogEntry.Direction.OUT, message_id=message.message_id)
        if message.photo:
            entry.media_type, entry.file_id = "photo", message.photo[-1].file_id
    # В журнале — слова сотрудника без подписи и подсказки: панель и так показывает «поддержка · автор»
    entry.text = text
    entry.is_support = True
    entry.staff_author = staff
    entry.save()
    SupportThread.objects.filter(user=user).update(last_activity_at=now, unread_count=0, last_read_at=now)
    audit_record(
        actor=staff,
        action="support.reply",
        target=user,
        details={"message_id": message.message_id, "photo": bool(message.photo)},
    )
    return entry


def support_thread_mark_read(*, thread: SupportThread, staff: Any) -> None:
    """Прочитано: счётчик непрочитанного обнуляется."""
    with transaction.atomic():
        SupportThread.objects.filter(pk=thread.pk).update(unread_count=0, last_read_at=timezone.now())
        audit_record(actor=staff, action="support.read", target=thread, details={})


def support_thread_set_resolved(*, thread: SupportThread, staff: Any, resolved: bool) -> None:
    """Решена (и прочитана) или открыта снова."""
    with transaction.atomic():
        if resolved:
            SupportThread.objects.filter(pk=thread.pk).update(
                status=SupportThread.Status.RESOLVED,
                resolved_by=staff,
                unread_count=0,
                last_read_at=timezone.now(),
            )
        else:
            SupportThread.objects.filter(pk=thread.pk).update(
                status=SupportThread.Status.OPEN, resolved_by=None
            )
        audit_record(
            actor=staff,
            action="support.resolve" if resolved else "support.reopen",
            target=thread,
            details={},
        )


def support_media_fetch(*, entry: ChatLogEntry) -> MediaFile:
    """Байты фото, видео или документа из журнала через getFile (только то, что до 20 МБ).

    Тип — только из INLINE_TYPES, иначе application/octet-stream: он угадан по расширению пути
    Telegram, то есть по имени файла, которое выбрал пользователь.

    Raises: ValueError — у записи нет файла; telegram.error.TelegramError — Telegram не отдал файл.
    """
    from botapp.telegram.outbound import bot_call

    if not entry.file_id:
        raise ValueError(f"chat log entry {entry.pk} has no file")

    async def download(bot: ExtBot[Any]) -> tuple[bytes, str]:
        file = await bot.get_file(entry.file_id)
        return bytes(await file.download_as_bytearray()), file.file_path or ""

    data, path = bot_call(download)
    name = path.rsplit("/", 1)[-1] or f"{entry.media_type or 'file'}-{entry.pk}"
    guessed = mimetypes.guess_type(name)[0]
    if data[:8] == b"\x89PNG\r\n\x1a\n":
        guessed = "image/png"
    elif entry.media_type == "photo" and guessed is None:
        guessed = "image/jpeg"
    content_type = guessed if guessed in INLINE_TYPES else "application/octet-stream"
    return MediaFile(data=data, content_type=content_type, filename=name)
