"""🖼 Мои работы / /gallery: результаты постранично по сохранённым file_id — без перегенерации."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from django.utils import formats, timezone
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update

from botapp.generation.delivery import result_keyboard
from botapp.models import JobOutput
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import escape, truncate_caption

PAGE = 5


def _page(user_id: int, page: int) -> tuple[list[JobOutput], bool]:
    rows = list(
        JobOutput.objects.select_related("job", "job__model", "job__user")
        .filter(job__user_id=user_id, status=JobOutput.Status.OK, delivered_at__isnull=False)
        .exclude(photo_file_id="", video_file_id="")
        .order_by("-delivered_at", "-pk")[page * PAGE : (page + 1) * PAGE + 1]
    )
    return rows[:PAGE], len(rows) > PAGE


def gallery_caption(output: JobOutput, language: str) -> str:
    """Модель, дата и запрос: без них копия из галереи — просто картинка, и не вспомнить, что просили."""
    job = output.job
    assert output.delivered_at is not None
    when = formats.date_format(timezone.localtime(output.delivered_at), "SHORT_DATE_FORMAT")
    text = f"<b>{escape(job.model.display_name(language))}</b> · {when}"
    if job.prompt:
        text += f"\n{escape(job.prompt)}"
    return truncate_caption(text)


async def show_gallery(update: Update, context: BotContext) -> None:
    """/gallery, 🖼 или «ещё» (gal:<страница>): результаты с кнопками, повторная отправка по file_id."""
    assert context.db_user is not None
    page = 0
    if update.callback_query and update.callback_query.data:
        await update.callback_query.answer()
        page = int(update.callback_query.data.split(":")[1])
    user = context.db_user
    outputs, has_more = await db(_page)(user.pk, page)
    if not outputs:
        text = _("No works yet. Send a prompt to create the first one.") if page == 0 else _("That is all.")
        await context.bot.send_message(user.telegram_id, text)
        return
    send: Callable[..., Awaitable[object]]
    for output in outputs:
        if output.photo_file_id:
            send, file_id = context.bot.send_photo, output.photo_file_id
        elif output.video_file_id and not output.video_file_id.startswith("link:"):
            send, file_id = context.bot.send_video, output.video_file_id
        else:
            continue  # видео больше 50 МБ ушло ссылкой: копии в Telegram нет
        await send(
            user.telegram_id,
            file_id,
            caption=gallery_caption(output, user.effective_language),
            parse_mode="HTML",
            reply_markup=result_keyboard(output.job, output.index),
        )
    if has_more:
        await context.bot.send_message(
            user.telegram_id,
            _("Older works:"),
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton(_("Older ▶️"), callback_data=f"gal:{page + 1}")]]
            ),
        )
