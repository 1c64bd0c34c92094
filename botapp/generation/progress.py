"""Статус задания для пользователя: одно сообщение, правится на месте не чаще раза в ~3 с."""

from __future__ import annotations

import logging
from typing import Any

from django.core.cache import cache
from django.utils import translation
from django.utils.translation import gettext as _
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.error import TelegramError
from telegram.ext import ExtBot

from botapp.models import GenerationJob, JobStatus
from botapp.telegram.sender import RecipientBlocked, SendDeferred

logger = logging.getLogger(__name__)

EDIT_EVERY_S = 3
RECENT_JOBS = 20


def model_eta_s(*, model_id: int, default: float = 20.0) -> float:
    """Средняя длительность последних заданий модели (от старта до результата); default — без истории."""
    rows = (
        GenerationJob.objects.filter(
            model_id=model_id, status=JobStatus.DELIVERED, generated_at__isnull=False
        )
        .order_by("-pk")
        .values_list("started_at", "generated_at")[:RECENT_JOBS]
    )
    durations = [(done - started).total_seconds() for started, done in rows if started and done]
    return sum(durations) / len(durations) if durations else default


def cancel_keyboard(job_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup([[InlineKeyboardButton(_("✖️ Cancel"), callback_data=f"job:x:{job_id}")]])


def queued_text(*, position: int, eta_s: float) -> str:
    return _("⏳ In the queue: position {position}, about {eta} s.").format(
        position=position, eta=max(5, round(eta_s))
    )


def stage_text(stage: str) -> str:
    texts = {
        "generating": _("🎨 Generating… The result will arrive in this chat."),
    }
    return texts[stage]


def job_progress(*, job: GenerationJob, stage: str) -> None:
    """Править сообщение статуса; лишние правки (чаще раза в 3 с) пропускаются.

    В конце статус удаляется: результат или сообщение о неудаче говорят сами за себя, а удаление
    не упирается в лимит сообщений чата, как правка.
    """
    if stage == "done":
        # Статус мог появиться уже после того, как воркер прочитал задание: берём свежие id
        job.status_chat_id, job.status_message_id = GenerationJob.objects.values_list(
            "status_chat_id", "status_message_id"
        ).get(pk=job.pk)
    if not (job.status_chat_id and job.status_message_id):
        return
    if stage != "done" and not cache.add(f"job-progress:{job.pk}", 1, timeout=EDIT_EVERY_S):
        return
    from botapp.telegram.outbound import bot_call

    with translation.override(job.user.effective_language):
        text = stage_text(stage) if stage != "done" else ""
    chat_id, message_id = job.status_chat_id, job.status_message_id

    async def edit(bot: ExtBot[Any]) -> None:
        if stage == "done":
            await bot.delete_message(chat_id, message_id)
            return
        await bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
        if stage == "generating":
            action = "upload_video" if job.kind == "video" else "upload_photo"
            await bot.send_chat_action(chat_id, action)

    try:
        bot_call(edit)
    except (TelegramError, SendDeferred, RecipientBlocked) as exc:
        # Статус — украшение: пропущенная правка (лимит чата, удалённое сообщение) не ломает задание
        logger.info("job %s status %s skipped: %s", job.pk, stage, exc)


def job_eta(*, job: GenerationJob, position: int) -> float:
    return model_eta_s(model_id=job.model_id) * max(1, position)
