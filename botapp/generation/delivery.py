"""Стадия доставки (задача delivery.deliver_job): отправить результат, затем списать за доставленное.

Отдельно от генерации: неудачная отправка никогда не генерирует заново. 429 от Telegram —
SendDeferred, задача переназначается на retry_after; заблокировавший бота — возврат холда.
Уже отправленный выход (есть file_id) повторно не отправляется.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import threading
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, TypeVar

from django.conf import settings
from django.db import connection
from django.utils import timezone, translation
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputMediaPhoto
from telegram.error import BadRequest

from botapp.generation import jobs, media, progress
from botapp.models import GenerationJob, JobOutput, JobStatus, rows
from botapp.providers.base import MediaKind
from botapp.providers.storage import StorageError
from botapp.telegram.dbcall import connection_checked_after, db
from botapp.telegram.formatting import escape, tokens, truncate_caption
from botapp.telegram.httpclient import UploadTooLarge
from botapp.telegram.sender import RecipientBlocked

logger = logging.getLogger(__name__)

T = TypeVar("T")

TELEGRAM_UPLOAD_MAX = 50 * 1024 * 1024
# Очередь общего лимита (~35 мс) ждём на месте; лимит чата (~1 с) — нет: задача переназначается
# на его срок, а слот воркера тем временем доставляет другим
SEND_MAX_WAIT_S = 0.25


@dataclass(frozen=True)
class Delivered:
    outcome: str  # delivered / notified / skipped / blocked


def result_keyboard(job: GenerationJob, index: int) -> InlineKeyboardMarkup:
    rows = [
        [
            InlineKeyboardButton(_("🔁 Again"), callback_data=f"res:again:{job.pk}"),
            InlineKeyboardButton(_("📎 Original"), callback_data=f"res:orig:{job.pk}:{index}"),
        ]
    ]
    if job.kind == "image":
        rows.append(
            [
                InlineKeyboardButton(_("✏️ Edit"), callback_data=f"res:edit:{job.pk}:{index}"),
                InlineKeyboardButton(_("🎬 Animate"), callback_data=f"res:anim:{job.pk}:{index}"),
            ]
        )
    return InlineKeyboardMarkup(rows)


def album_keyboard(job: GenerationJob, indexes: list[int]) -> InlineKeyboardMarkup:
    """Кнопки под подписью альбома: у альбома своих кнопок нет, и оригинал, правка и оживление
    иначе были бы только у первой картинки — здесь они по номеру картинки в альбоме (1…N)."""
    numbered = list(enumerate(indexes, start=1))
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton(_("🔁 Again"), callback_data=f"res:again:{job.pk}")],
            *(
                [
                    InlineKeyboardButton(f"{icon} {n}", callback_data=f"res:{action}:{job.pk}:{i}")
                    for n, i in numbered
                ]
                for icon, action in (("📎", "orig"), ("✏️", "edit"), ("🎬", "anim"))
            ),
        ]
    )


def failure_text(category: str) -> str:
    """Причина по категории ошибки; категорий провайдеров и хранилища — все (тест сверяет с кодом)."""
    reasons = {
        "safety": _("the request or the result was blocked by the provider's safety filters"),
        "video_filtered": _("the video was blocked by the provider's safety filters"),
        "no_image": _("the model did not return an image; try rephrasing the prompt"),
        "invalid_request": _("the provider rejected the request"),
        "forbidden": _("the provider refused to serve the request"),
        "provider_unavailable": _("the provider is overloaded or unavailable"),
        "timeout": _("the provider did not answer in time"),
        "deadline": _("it took too long"),
        "blocked": _("the bot cannot write to you"),
        "wrong_aspect_ratio": _("the image came back in a wrong shape"),
        "spend_limit": _("generation is paused for now"),
        "delivery_rejected": _("Telegram did not accept the result"),
        "delivery_failed": _("Telegram did not accept the result"),
        "provider_error": _("the provider rejected the request"),
        "rate_limited": _("the provider is overloaded or unavailable"),
        "connection": _("the provider is overloaded or unavailable"),
        "no_video": _("the model did not return a video; try rephrasing the prompt"),
        "video_failed": _("the provider could not make this video"),
        "not_found": _("the provider lost the result"),
        "storage_error": _("we could not save the result"),
        "storage_not_found": _("we could not save the result"),
        "storage_unavailable": _("we could not save the result"),
        "staff_release": _("the job was stopped by support"),
    }
    reason = reasons.get(category, _("an unexpected error"))
    return _("😔 The generation failed: {reason}. The tokens were returned to your balance.").format(
        reason=reason
    )


def _caption(job: GenerationJob, charged: int, available: int) -> str:
    params = job.params
    if job.kind == "image":
        details = f"{params.get('aspect_ratio', '1:1')} · {params.get('size', '1K')}"
    else:
        details = _("{duration} s · {resolution} · {ratio}").format(
            duration=params.get("duration"),
            resolution=params.get("resolution"),
            ratio=params.get("aspect_ratio"),
        )
    name = job.model.display_name(job.user.effective_language)
    text = _("{model} · {details}\nCharged: {charged} · balance: {available}").format(
        model=escape(name), details=escape(details), charged=tokens(charged), available=tokens(available)
    )
    return truncate_caption(text)


async def _send_images(
    bot: Any, job: GenerationJob, outputs: list[JobOutput], blobs: dict[int, bytes], caption: str
) -> None:
    chat_id = job.user.telegram_id
    pending = [o for o in outputs if not o.photo_file_id]
    if len(outputs) == 1 and pending:
        output = pending[0]

        async def send_one(force_jpeg: bool) -> Any:
            return await bot.send_photo(
                chat_id,
                media.photo_payload(blobs[output.index], force_jpeg=force_jpeg),
                caption=caption,
                parse_mode="HTML",
                reply_markup=result_keyboard(job, output.index),
            )

        message = await _photo_or_jpeg(job, send_one)
        output.photo_file_id, output.message_id = message.photo[-1].file_id, message.message_id
    elif len(outputs) > 1:
        if pending:

            async def send_album(force_jpeg: bool) -> Any:
                album = [
                    InputMediaPhoto(media.photo_payload(blobs[o.index], force_jpeg=force_jpeg))
                    for o in pending
                ]
                return await bot.send_media_group(chat_id, album)

            messages = await _photo_or_jpeg(job, send_album)
            for output, message in zip(pending, messages, strict=False):
                output.photo_file_id, output.message_id = message.photo[-1].file_id, message.message_id
            await db(_save_outputs)(pending)
        if job.caption_message_id is None:
            # У альбома не бывает кнопок: подпись и кнопки — отдельным сообщением (ровно одним)
            hint = _("📎 original · ✏️ edit · 🎬 animate — by the number of the image in the album")
            sent = await bot.send_message(
                chat_id,
                f"{caption}\n{escape(hint)}",
                parse_mode="HTML",
                reply_markup=album_keyboard(job, [o.index for o in outputs]),
            )
            job.caption_message_id = sent.message_id
            await db(_save_caption_id)(job)
    if job.user.send_originals_as_files:
        for output in outputs:
            if output.document_file_id or output.index not in blobs:
                continue
            # Расширение — по сохранённому оригиналу: провайдер может вернуть и JPEG
            extension = output.storage_key.rsplit(".", 1)[-1] if "." in output.storage_key else "png"
            name = f"nanobanana-{job.pk}-{output.index + 1}.{extension}"
            send_document = functools.partial(bot.send_document, chat_id, filename=name)
            document = await _upload_or_link(job, output, blobs[output.index], send_document)
            if document is not None:
                output.document_file_id = document.document.file_id
            else:
                # Оригинал больше лимита загрузки бота: ссылка на нашу копию вместо файла
                await bot.send_message(chat_id, _original_link_text(output))
                output.document_file_id = "link:"


async def _photo_or_jpeg(job: GenerationJob, send: Callable[[bool], Awaitable[Any]]) -> Any:
    """Оригинал как фото; отказ Telegram (400: необычный PNG) — повтор с JPEG-превью.

    Отказ запоминается в кэше: повтор JPEG может упереться в лимит чата и уйти в следующую
    попытку доставки, и та должна слать уже JPEG. Отказ и JPEG — BadRequest наружу (без повторов).
    """
    from django.core.cache import cache

    key = f"job-photo-jpeg:{job.pk}"
    if await cache.aget(key):
        return await send(True)
    try:
        return await send(False)
    except BadRequest:
        logger.warning("job %s: Telegram rejected the original as a photo, sending a JPEG preview", job.pk)
        await cache.aset(key, 1, timeout=24 * 3600)
        return await send(True)


async def _upload_or_link(
    job: GenerationJob, output: JobOutput, data: bytes, upload: Callable[[bytes], Awaitable[Any]]
) -> Any | None:
    """Загрузить файл в Telegram; None — не влезает в лимит загрузки бота, слать ссылку.

    Размер Telegram считает сам: его 413 — тоже ссылка, а не сбой сети. Отказ запоминается в
    кэше: ссылка может упереться в лимит чата и уйти в следующую попытку доставки, и та не
    должна загружать тот же файл снова.
    """
    from django.core.cache import cache

    key = f"job-too-large:{job.pk}:{output.index}"
    if len(data) > TELEGRAM_UPLOAD_MAX or await cache.aget(key):
        return None
    try:
        return await upload(data)
    except UploadTooLarge:
        logger.warning(
            "job %s: Telegram refused output %s as too large, sending a link", job.pk, output.index
        )
        await cache.aset(key, 1, timeout=24 * 3600)
        return None


def _original_link_text(output: JobOutput) -> str:
    from botapp.providers.storage import media_storage

    url = media_storage().signed_url(kind="image", key=output.storage_key, expires_s=7 * 24 * 3600)
    return _("The original is larger than Telegram allows; download it here: {url}").format(url=url)


async def _send_video(bot: Any, job: GenerationJob, output: JobOutput, data: bytes, caption: str) -> None:
    chat_id = job.user.telegram_id
    if output.video_file_id:
        return
    send_video = functools.partial(
        bot.send_video,
        chat_id,
        caption=caption,
        parse_mode="HTML",
        supports_streaming=True,
        reply_markup=result_keyboard(job, output.index),
    )
    message = await _upload_or_link(job, output, data, send_video)
    if message is not None:
        output.video_file_id, output.message_id = message.video.file_id, message.message_id
        return
    from botapp.providers.storage import media_storage

    url = media_storage().signed_url(kind="video", key=output.storage_key, expires_s=7 * 24 * 3600)
    link = _("The video is larger than Telegram allows; download it here: {url}").format(url=url)
    message = await bot.send_message(chat_id, caption + "\n" + escape(link), parse_mode="HTML")
    output.video_file_id = f"link:{settings.MEDIA_STORAGE_BACKEND}"
    output.message_id = message.message_id


async def _lease_heartbeat(job_id: int, every_s: float) -> None:
    """Продлевать аренду доставки, пока идёт отправка: одна загрузка (видео 50 МБ, альбом) может
    длиться дольше аренды, и без продления во время вызова сборщик отдал бы доставку второй копии.

    Продление — по возможности: сбой БД не должен оборвать отправку, которая уже идёт.
    """
    while True:
        await asyncio.sleep(every_s)
        try:
            await db(jobs.job_delivery_hold)(job_id=job_id)
        except Exception:
            logger.warning("job %s: delivery lease renewal failed", job_id, exc_info=True)


@contextlib.contextmanager
def lease_kept_while_reading(job_id: int) -> Iterator[None]:
    """Продлевать аренду доставки из отдельной нити, пока идёт синхронное чтение из хранилища.

    Большое видео из Supabase на медленной сети читается дольше аренды (120 с): без продления сборщик
    отдал бы доставку второй копии, и пользователь получил бы ролик дважды (списание всё равно одно).
    """
    stop = threading.Event()

    def renew() -> None:
        try:
            while not stop.wait(settings.DELIVERY_LEASE_S / 3):
                try:
                    jobs.job_delivery_hold(job_id=job_id)
                except Exception:
                    logger.warning("job %s: delivery lease renewal failed", job_id, exc_info=True)
        finally:
            connection.close()  # соединение этой нити, не воркера

    thread = threading.Thread(target=renew, name=f"delivery-lease-{job_id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


async def with_lease_heartbeat(job_id: int, sending: Awaitable[T]) -> T:
    """Выполнить отправку, продлевая аренду доставки каждую треть её срока."""
    heartbeat = asyncio.create_task(_lease_heartbeat(job_id, settings.DELIVERY_LEASE_S / 3))
    try:
        return await sending
    finally:
        heartbeat.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await heartbeat


def _save_caption_id(job: GenerationJob) -> None:
    GenerationJob.objects.filter(pk=job.pk).update(caption_message_id=job.caption_message_id)


def _save_outputs(outputs: list[JobOutput]) -> None:
    """file_id и сообщения отправленного; сырой SQL — как save(update_fields), без сборки ORM."""
    if not outputs:
        return
    now = timezone.now()
    for output in outputs:
        if output.photo_file_id or output.video_file_id:
            output.delivered_at = output.delivered_at or now
    with connection.cursor() as cursor:
        cursor.executemany(
            f"UPDATE {rows.table(JobOutput)} SET photo_file_id = %s, document_file_id = %s, "  # noqa: S608
            "video_file_id = %s, message_id = %s, delivered_at = %s WHERE id = %s",
            [
                [o.photo_file_id, o.document_file_id, o.video_file_id, o.message_id, o.delivered_at, o.pk]
                for o in outputs
            ],
        )


def _mark_notified(job: GenerationJob) -> None:
    """О провале сказано (или сказать нельзя): уведомление больше не нужно, аренда доставки снята."""
    GenerationJob.objects.filter(pk=job.pk, notified_at__isnull=True).update(
        notified_at=timezone.now(), lease_until=None
    )


def _delivered_count(outputs: list[JobOutput]) -> int:
    """Выходы, которые Telegram подтвердил (есть file_id фото или видео, ссылка тоже в счёт)."""
    return sum(1 for o in outputs if o.photo_file_id or o.video_file_id)


def _delivery_overdue(job: GenerationJob) -> bool:
    """Результат ждёт доставки дольше settings.DELIVERY_GIVE_UP_S: без предела долгие сбои сети
    повторялись бы, а токены висели бы в холде вечно."""
    limit = timedelta(seconds=settings.DELIVERY_GIVE_UP_S)
    return job.generated_at is not None and timezone.now() - job.generated_at > limit


def _settle_or_fail(
    job: GenerationJob, outputs: list[JobOutput], *, category: str, message: str, reachable: bool = True
) -> Delivered:
    """Доставка кончилась, не отправив всего: доставленное — списать, если ничего — вернуть и объяснить.

    Вызывает держатель аренды доставки; возврат — только из GENERATED (условием в базе).
    reachable=False — пользователь заблокировал бота: статус не правим, уведомлять некуда.
    """
    delivered = _delivered_count(outputs)
    if not delivered:
        jobs.job_fail(job=job, category=category, message=message, from_statuses=(JobStatus.GENERATED,))
        return Delivered("rejected")
    jobs.job_settle_delivered(job=job, delivered=delivered)
    if reachable:
        progress.job_progress(job=job, stage="done", ids_fresh=job.status == JobStatus.DELIVERED)
    else:
        _mark_notified(job)
    return Delivered("delivered")


def _notify_failure(job: GenerationJob) -> Delivered:
    from botapp.telegram.outbound import bot_call

    if job.error_category == "blocked" or job.user.is_blocked:
        # Заблокировавшему бота писать бессмысленно: Telegram ответит 403
        _mark_notified(job)
        return Delivered("blocked")

    with translation.override(job.user.effective_language):
        text = failure_text(job.error_category)
    chat_id = job.user.telegram_id
    # Заблокировавшему бота сообщить нельзя; 400 (чат исчез) повторять бессмысленно; холд уже возвращён
    with contextlib.suppress(RecipientBlocked, BadRequest):
        bot_call(lambda bot: bot.send_message(chat_id, text))
    _mark_notified(job)
    progress.job_progress(job=job, stage="done")
    return Delivered("notified")


def job_deliver(*, job_id: int, claimed: bool = False) -> Delivered:
    """Отправить готовый результат или сообщение о неудаче. SendDeferred пробрасывается задаче.

    Отправляет держатель аренды доставки: claimed — её уже взял вызывающий (переход в GENERATED),
    иначе берём здесь; не вышло — доставляет другой (или уже нечего), выходим.
    """
    from botapp.providers.storage import media_storage
    from botapp.telegram.outbound import bot_call

    if not claimed and not jobs.job_delivery_claim(job_id=job_id):
        return Delivered("skipped")
    loaded = jobs.job_load_with_balance(job_id=job_id)
    if loaded is None:
        return Delivered("skipped")
    job, available = loaded
    if job.status in (JobStatus.FAILED, JobStatus.EXPIRED) and job.notified_at is None:
        # Провал после нашего перехода в GENERATED (персонал вернул холд): о нём сообщит задача,
        # которую опубликовал job_fail, — со своей арендой; иначе сообщение ушло бы дважды
        return Delivered("skipped") if claimed else _notify_failure(job)
    if job.status != JobStatus.GENERATED:
        return Delivered("skipped")
    outputs = jobs.job_outputs_ok(job_id=job.pk)
    if _delivery_overdue(job):
        give_up = settings.DELIVERY_GIVE_UP_S
        logger.error("job %s: delivery gave up %s s after the result was ready", job.pk, give_up)
        return _settle_or_fail(
            job, outputs, category="delivery_failed", message=f"delivery gave up after {give_up:.0f} s"
        )
    storage = media_storage()
    kind: MediaKind = "video" if job.kind == "video" else "image"
    try:
        with lease_kept_while_reading(job.pk):
            blobs = {o.index: storage.get(kind=kind, key=o.storage_key) for o in outputs}
    except StorageError as exc:
        # Объекта нет или доступа нет — повтор не поможет (временный сбой уходит задаче на повтор)
        logger.error("job %s: the stored result cannot be read: %s", job.pk, exc)
        return _settle_or_fail(job, outputs, category="storage_error", message=str(exc))
    charge = jobs.job_charge(job=job, delivered=len(outputs))
    with translation.override(job.user.effective_language):
        caption = _caption(job, charge, available + job.price - charge)

        async def send(bot: Any) -> None:
            if job.kind == "video":
                sending = _send_video(bot, job, outputs[0], blobs[0], caption)
            else:
                sending = _send_images(bot, job, outputs, blobs, caption)
            await with_lease_heartbeat(job.pk, sending)

        try:
            # Загрузка ролика идёт минутами: file_id отправленного должны записаться и после обрыва БД,
            # иначе повтор доставки прислал бы его второй раз
            with connection_checked_after():
                bot_call(send, max_wait=SEND_MAX_WAIT_S)
        except RecipientBlocked:
            _save_outputs(outputs)
            # Заблокировал, возможно после части (альбом без подписи, фото без оригинала файлом, повтор
            # после частичной отправки): доставленное — списать, как при отказе 400; писать ему незачем
            _settle_or_fail(job, outputs, category="blocked", message="", reachable=False)
            return Delivered("blocked")
        except BadRequest as exc:
            # Telegram отверг отправку окончательно (400): повтор его не изменит. Доставленное —
            # списать, если не доставлено ничего — вернуть токены и сказать почему
            _save_outputs(outputs)
            logger.warning("job %s: Telegram rejected the delivery: %s", job.pk, exc)
            return _settle_or_fail(job, outputs, category="delivery_rejected", message=str(exc))
        except BaseException:
            # Отправленное до сбоя запоминаем: повтор не пришлёт его второй раз
            _save_outputs(outputs)
            raise
        _save_outputs(outputs)
    jobs.job_settle_delivered(job=job, delivered=_delivered_count(outputs))
    progress.job_progress(job=job, stage="done", ids_fresh=job.status == JobStatus.DELIVERED)
    return Delivered("delivered")


def job_resend(*, job_id: int) -> int:
    """Прислать доставленные выходы снова по сохранённым file_id; число отправленных."""
    from botapp.telegram.outbound import bot_call

    job = GenerationJob.objects.select_related("user", "model").get(pk=job_id)
    outputs = list(JobOutput.objects.filter(job=job, status=JobOutput.Status.OK).order_by("index"))
    chat_id = job.user.telegram_id

    async def send(bot: Any) -> int:
        sent = 0
        for output in outputs:
            markup = result_keyboard(job, output.index)
            if output.photo_file_id:
                await bot.send_photo(chat_id, output.photo_file_id, reply_markup=markup)
                sent += 1
            elif output.video_file_id and not output.video_file_id.startswith("link:"):
                await bot.send_video(chat_id, output.video_file_id, reply_markup=markup)
                sent += 1
        return sent

    with translation.override(job.user.effective_language):
        return int(bot_call(send))
