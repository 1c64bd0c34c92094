"""🎨 Изображение / 🎬 Видео: выбор модели, промпт и фото, карточка с ценой, запуск, отмена, результаты."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

from django.utils.translation import gettext as _
from django.utils.translation import ngettext
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.error import BadRequest

from botapp.generation import drafts, jobs, progress
from botapp.models import GenerationJob, JobOutput, TelegramUser
from botapp.providers.base import MediaKind
from botapp.telegram.application import BotContext
from botapp.telegram.dbcall import db
from botapp.telegram.formatting import escape, from_tokens, tokens, truncate_html
from botapp.users import services


def refusal_text(exc: jobs.JobRefused, language: str = "en") -> str:
    custom = exc.details.get(f"text_{language}")
    if custom:
        # Текст выключателя задаёт персонал в админке на обоих языках
        return str(custom)
    texts = {
        "model_disabled": _("This model is switched off right now. Choose another one."),
        "prompt_empty": _("Describe what to draw: send the prompt as text or as a photo caption."),
        "prompt_too_long": _too_long_text(int(exc.details.get("length", 0))),
        "too_many_references": _("Too many photos: this model takes at most {limit}."),
        "bad_parameters": _("These parameters are not available for this model."),
        "paused": _("Generation is paused for now. Please try again later."),
        "daily_cap": _("Generation is paused for now. Please try again later."),
        "price_changed": _(
            "The price has changed: it is now {price}, the card showed {shown}. "
            "Check the card and confirm again."
        ),
    }
    details = {k: v for k, v in exc.details.items() if not k.startswith("text_")}
    if exc.code == "price_changed":
        details = {"price": tokens(int(details["price"])), "shown": tokens(int(details["shown"]))}
    return texts.get(exc.code, texts["bad_parameters"]).format(**details)


# Сколько запроса показывать на карточке: длинный целиком не влез бы в сообщение рядом с параметрами
PROMPT_SHOWN = 700


def _too_long_text(length: int) -> str:
    return ngettext(
        "The prompt is too long: {length} character, at most {limit}. Please shorten it.",
        "The prompt is too long: {length} characters, at most {limit}. Please shorten it.",
        length,
    )


def _card_text(card: drafts.Card, language: str) -> str:
    draft = card.draft
    lines = [f"<b>{escape(card.model.display_name(language))}</b>"]
    if draft["prompt"]:
        shown = (
            draft["prompt"] if len(draft["prompt"]) <= PROMPT_SHOWN else draft["prompt"][:PROMPT_SHOWN] + "…"
        )
        lines.append(_("Prompt: {prompt}").format(prompt=escape(shown)))
        if card.too_long:
            # Сказать сразу, а не после «Сгенерировать»: карточка с ценой обещала бы то, что не примут
            length, limit = len(draft["prompt"]), card.model.max_prompt_length
            lines.append("⚠️ " + _too_long_text(length).format(length=length, limit=limit))
    else:
        lines.append(_("Send the prompt as a message."))
    if draft["refs"]:
        lines.append(_("Photos: {count}").format(count=len(draft["refs"])))
    if draft.get("refs_dropped"):
        lines.append(
            _("Extra photos were left out: this model takes at most {limit}.").format(
                limit=len(draft["refs"])
            )
        )
    if draft["kind"] == "image":
        lines.append(
            _("Ratio {ratio} · size {size} · images: {count}").format(
                ratio=draft["aspect_ratio"], size=draft["size"], count=draft["outputs"]
            )
        )
    else:
        lines.append(
            _("{duration} s · {resolution} · {ratio}").format(
                duration=draft["duration"], resolution=draft["resolution"], ratio=draft["aspect_ratio"]
            )
        )
        if draft.get("negative_prompt"):
            lines.append(_("Avoid: {negative}").format(negative=escape(draft["negative_prompt"][:300])))
    if card.price is not None:
        lines.append(
            _("Price: {price} · balance: {available}").format(
                price=tokens(card.price), available=tokens(card.available)
            )
        )
    return truncate_html("\n".join(lines))


def _card_keyboard(card: drafts.Card) -> InlineKeyboardMarkup:
    nonce, kind = card.draft["nonce"], card.draft["kind"]
    if kind == "image":
        params = [(_("Ratio ▸"), "ratio"), (_("Size ▸"), "size"), (_("Count ▸"), "count")]
    else:
        params = [(_("Duration ▸"), "duration"), (_("Quality ▸"), "resolution"), (_("Ratio ▸"), "ratio")]
    rows = [
        [InlineKeyboardButton(label, callback_data=f"gen:c:{param}:{nonce}") for label, param in params],
        [InlineKeyboardButton(_("Model ▸"), callback_data=f"gen:c:model:{nonce}")],
    ]
    if kind == "video":
        rows[1].append(InlineKeyboardButton(_("➖ Avoid…"), callback_data=f"gen:neg:{nonce}"))
    if card.too_long:
        # Такой запрос не примут: кнопка с ценой обещала бы запуск — только отмена, ждём запрос короче
        rows.append([InlineKeyboardButton(_("✖️ Cancel"), callback_data=f"gen:x:{nonce}")])
    elif card.draft["prompt"] or (kind == "video" and card.draft["refs"]):
        rows.append(
            [
                # Показанная цена едет в кнопке: если к нажатию она выросла, задание не создаётся
                InlineKeyboardButton(_("✅ Generate"), callback_data=_confirm_data(card)),
                InlineKeyboardButton(_("✖️ Cancel"), callback_data=f"gen:x:{nonce}"),
            ]
        )
    else:
        rows.append([InlineKeyboardButton(_("✖️ Cancel"), callback_data=f"gen:x:{nonce}")])
    return InlineKeyboardMarkup(rows)


def _confirm_data(card: drafts.Card) -> str:
    nonce = card.draft["nonce"]
    return f"gen:ok:{nonce}" if card.price is None else f"gen:ok:{card.price}:{nonce}"


async def _show_card(
    context: BotContext,
    user: TelegramUser,
    draft: dict[str, Any],
    *,
    edit: Message | None = None,
    card: drafts.Card | None = None,
) -> None:
    if card is None:
        card = await db(drafts.draft_card)(user=user, draft=draft)
    text = _card_text(card, user.effective_language)
    markup = _card_keyboard(card)
    message_id = draft.get("card_message_id")
    if edit is not None:
        await edit.edit_text(text, parse_mode="HTML", reply_markup=markup)
        return
    if message_id and draft.get("media_group"):
        # Фото того же альбома: правим ту же карточку, а не шлём новую на каждое фото
        await context.bot.edit_message_text(
            text, chat_id=user.telegram_id, message_id=message_id, parse_mode="HTML", reply_markup=markup
        )
        return
    sent = await context.bot.send_message(user.telegram_id, text, parse_mode="HTML", reply_markup=markup)
    draft["card_message_id"] = sent.message_id
    await db(drafts.draft_save)(user=user, draft=draft)


async def choose_model(update: Update, context: BotContext, kind: str) -> None:
    """🎨 или 🎬 в меню: выбор модели с ценой «от N токенов»."""
    assert context.db_user is not None and update.effective_message is not None
    models = await db(drafts.models_for)(kind)
    if not models:
        # Персонал выключил все модели этого вида: пустой выбор без кнопок выглядел бы поломкой
        await update.effective_message.reply_text(_("Generation is paused for now. Please try again later."))
        return
    rows = []
    for model in models:
        price = await db(drafts.model_min_price)(model)
        label = model.display_name(context.db_user.effective_language)
        if price is not None:
            label = f"{label} · {from_tokens(price)}"
        rows.append([InlineKeyboardButton(label, callback_data=f"gen:m:{kind}:{model.slug}")])
    prompt = _("Choose the image model:") if kind == "image" else _("Choose the video model:")
    await update.effective_message.reply_text(prompt, reply_markup=InlineKeyboardMarkup(rows))


async def model_chosen(update: Update, context: BotContext) -> None:
    """gen:m:<вид>:<модель>: черновик с этой моделью, ждём промпт (и фото)."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    await query.answer()
    _gen, _m, kind, slug = query.data.split(":", 3)
    draft = await db(drafts.draft_new)(user=context.db_user, kind=kind, model_slug=slug)
    await db(drafts.draft_save)(user=context.db_user, draft=draft)
    hint = (
        _("Send a prompt. To edit or combine photos, send them with the prompt as the caption.")
        if kind == "image"
        else _("Send a prompt for the video, or a photo with a caption to animate it.")
    )
    # Назвать выбранную модель: кнопки выбора остаются в истории, и без этого не видно, что выбрано
    model = await db(drafts.model_get)(slug, kind)
    name = escape(model.display_name(context.db_user.effective_language))
    await context.bot.send_message(context.db_user.telegram_id, f"<b>{name}</b>\n{hint}", parse_mode="HTML")


# getFile: Telegram отдаёт боту файлы не больше 20 МБ
BOT_DOWNLOAD_MAX = 20 * 1024 * 1024


def _photo_id(message: Message) -> str | None:
    if message.photo:
        return message.photo[-1].file_id
    if message.document and (message.document.mime_type or "").startswith("image/"):
        return message.document.file_id
    return None


async def prompt_message(update: Update, context: BotContext) -> None:
    """Текст или фото вне других шагов: карточка с настройками по умолчанию (или сразу запуск)."""
    message = update.effective_message
    assert message is not None and context.db_user is not None
    user = context.db_user
    text = (message.text or message.caption or "").strip()
    photo = _photo_id(message)
    if photo and message.document and (message.document.file_size or 0) > BOT_DOWNLOAD_MAX:
        # Боту Telegram отдаёт файлы не больше 20 МБ: сказать сразу, а не отказом задания после холда
        await message.reply_text(
            _(
                "This file is too large: {size} MB. Bots can download files up to 20 MB — "
                "send the picture as a photo or a smaller file."
            ).format(size=round((message.document.file_size or 0) / 1024 / 1024, 1))
        )
        return
    # Шаг диалога уже прочитан вебхуком вместе с захватом апдейта (route_text ничего не писал)
    if context.conversation_known:
        draft = drafts.draft_of(context.conversation)
    else:
        draft = await db(drafts.draft_get)(user=user)
    replied = message.reply_to_message
    if replied is not None and text and not photo:
        replied_photo = replied.photo[-1].file_id if replied.photo else ""
        output = await db(drafts.output_by_message)(
            user=user, message_id=replied.message_id, photo_file_id=replied_photo
        )
        reference = drafts.output_ref(output) if output is not None else None
        ours = replied.from_user is not None and replied.from_user.id == context.bot.id
        if reference is None and replied_photo and ours:
            # Наше фото, но не результат (или его уже нет в базе): править по file_id из Telegram
            reference = replied_photo
        if reference is not None:
            await _edit_result(context, user, reference, text, source=output.job if output else None)
            return
    if message.media_group_id and photo:
        await _album_photo(context, user, text=text, photo=photo, album=message.media_group_id)
        return
    # Без подтверждения запуск сразу, если промпт уже есть; иначе — карточка. Ответ на «➖ Избегать…»
    # меняет карточку и не запускает её
    negative = draft is not None and draft.get("awaiting") == "negative"
    if user.skip_confirmation and text and not negative:
        # Шаг диалога пуст (прочитан вместе с апдейтом) — сбрасывать после запуска нечего
        state = context.conversation
        empty = context.conversation_known and (state is None or not state.state)
        draft, started = await db(drafts.draft_take_and_start)(
            user=user, draft=draft, text=text, photo=photo, reset=not empty
        )
        await _start(context, user, draft, started=started)
        return
    draft, card = await db(drafts.draft_take_message)(user=user, draft=draft, text=text, photo=photo)
    await _show_card(context, user, draft, card=card)


# Сколько первое фото альбома ждёт остальные, прежде чем показать карточку: Telegram шлёт
# фото альбома отдельными апдейтами почти разом
ALBUM_DEBOUNCE_S = 0.8


async def _album_photo(context: BotContext, user: TelegramUser, *, text: str, photo: str, album: str) -> None:
    """Фото альбома: одна карточка на альбом со всеми его фото (в пределах лимита модели)."""
    draft, role = await db(drafts.draft_take_album_photo)(user=user, text=text, photo=photo, album=album)
    if role == "quiet":
        return
    if role == "edit":
        await _show_card(context, user, draft)
        return
    await asyncio.sleep(ALBUM_DEBOUNCE_S)
    collected = await db(drafts.draft_get)(user=user, nonce=draft["nonce"])
    if collected is None:
        return  # пользователь уже ушёл дальше
    draft = collected
    card = await db(drafts.draft_card)(user=user, draft=draft)
    sent = await context.bot.send_message(
        user.telegram_id,
        _card_text(card, user.effective_language),
        parse_mode="HTML",
        reply_markup=_card_keyboard(card),
    )
    saved = await db(drafts.draft_set_card)(user=user, nonce=draft["nonce"], message_id=sent.message_id)
    if saved is not None and len(saved["refs"]) != len(draft["refs"]):
        # Фото, пришедшее, пока карточка летела, карточку не видело: поправить
        await _show_card(context, user, saved)


async def _edit_result(
    context: BotContext, user: TelegramUser, reference: str, text: str, *, source: GenerationJob | None
) -> None:
    """Ответ текстом на нашу картинку: правка её той же моделью (или моделью по умолчанию)."""
    model_slug = await db(lambda: source.model.slug)() if source is not None else ""
    draft = await db(drafts.draft_new)(
        user=user, kind="image", model_slug=model_slug, prompt=text, refs=[reference]
    )
    if source is not None:
        draft["source_job"] = source.pk
    await db(drafts.draft_save)(user=user, draft=draft)
    if user.skip_confirmation:
        await _start(context, user, draft)
        return
    await _show_card(context, user, draft)


async def card_button(update: Update, context: BotContext) -> None:
    """Кнопки карточки: gen:c:<параметр>:<nonce>, gen:ok:[<цена>:]<nonce>, gen:x:<nonce>, gen:neg:<nonce>."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    user = context.db_user
    parts = query.data.split(":")
    action, nonce = parts[1], parts[-1]
    pressed = query.message.message_id if query.message is not None else None
    if action == "c":
        draft = await db(drafts.draft_cycle)(user=user, nonce=nonce, param=parts[2], card_message_id=pressed)
    else:
        draft = await db(drafts.draft_get)(user=user, nonce=nonce, card_message_id=pressed)
    if draft is None:
        # Старая карточка: задание по ней уже создано, черновик заменён или есть карточка новее
        await query.answer(_("This card is no longer active."))
        replaced = await db(drafts.card_replaced)(user=user, nonce=nonce, card_message_id=pressed)
        if replaced and isinstance(query.message, Message):
            # Только копию, которую сменила карточка новее: после «✅» на этом сообщении уже статус задания
            # с его «✖️» (двойное нажатие), и снимать его кнопки нельзя
            with contextlib.suppress(BadRequest):
                await query.message.edit_reply_markup(reply_markup=None)
        return
    await query.answer()
    if action == "c":
        if isinstance(query.message, Message):
            await _show_card(context, user, draft, edit=query.message)
        return
    if action == "neg":
        await db(drafts.draft_await_negative)(user=user, draft=draft)
        await context.bot.send_message(
            user.telegram_id,
            _(
                "Send what the video should avoid, for example: text, watermarks, blur. "
                "Send a dash (-) to clear it."
            ),
        )
        return
    if action == "x":
        await db(services.conversation_set)(user=user, state="")
        if isinstance(query.message, Message):
            await query.message.edit_text(_("Cancelled."))
        return
    shown = int(parts[2]) if len(parts) == 4 and parts[2].isdigit() else None
    card = query.message if isinstance(query.message, Message) else None
    await _start(context, user, draft, card=card, shown_price=shown)


async def _start(
    context: BotContext,
    user: TelegramUser,
    draft: dict[str, Any],
    card: Message | None = None,
    started: drafts.Started | None = None,
    shown_price: int | None = None,
) -> None:
    """Создать задание (холд + очередь по коммиту) и показать статус с кнопкой отмены.

    started — задание уже создано тем же походом в БД, что и черновик (без подтверждения);
    shown_price — цена на нажатой карточке: дороже неё задание не создаётся.
    """
    if started is None:
        started = await db(drafts.draft_start)(user=user, draft=draft, shown_price=shown_price)
    if started.refused is not None and started.refused.code == "price_changed" and card is not None:
        # Цену подняли, пока карточка ждала: показать новую и ждать нового подтверждения
        await _show_card(context, user, draft, edit=card)
    if started.refused is not None:
        await context.bot.send_message(
            user.telegram_id, refusal_text(started.refused, user.effective_language)
        )
        return
    if started.job is None:
        await context.bot.send_message(
            user.telegram_id,
            _("Not enough tokens: the price is {price}, your balance is {available}.").format(
                price=started.price, available=started.available
            ),
            reply_markup=InlineKeyboardMarkup(
                [[InlineKeyboardButton(_("⭐ Top up"), callback_data="top:menu")]]
            ),
        )
        return
    text = progress.queued_text(position=started.position, eta_s=started.eta_s)
    markup = progress.cancel_keyboard(started.job.pk)
    if card is not None:
        status = await card.edit_text(text, reply_markup=markup)
    else:
        status = await context.bot.send_message(user.telegram_id, text, reply_markup=markup)
    if isinstance(status, Message):
        await db(drafts.job_status_message_set)(job_id=started.job.pk, message_id=status.message_id)


async def cancel_job(update: Update, context: BotContext) -> None:
    """✖️ под статусом (job:x:<id>): вернуть токены, пока провайдер не начал."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    outcome = await db(jobs.job_cancel)(job_id=int(query.data.rsplit(":", 1)[1]), user=context.db_user)
    if outcome == "cancelled":
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(_("Cancelled. The tokens were returned to your balance."))
        return
    await query.answer(
        _("The generation has already started; the result will arrive shortly."), show_alert=True
    )
    if isinstance(query.message, Message) and outcome == "started":
        await query.message.edit_reply_markup(None)


async def result_button(update: Update, context: BotContext) -> None:
    """Кнопки под результатом: res:again|orig|edit|anim:<задание>[:<выход>]."""
    query = update.callback_query
    assert query is not None and query.data is not None and context.db_user is not None
    user = context.db_user
    parts = query.data.split(":")
    action, job_id = parts[1], int(parts[2])
    index = int(parts[3]) if len(parts) > 3 else 0
    job = await db(GenerationJob.objects.select_related("model").filter(pk=job_id, user=user).first)()
    await query.answer()
    if job is None:
        return
    if action == "again":
        draft = await db(drafts.draft_from_job)(user=user, job=job)
        await _show_card(context, user, draft)
    elif action == "orig":
        await send_original(context, user, job, index)
    elif action == "edit" and job.kind == "image":
        # Как «оживить»: черновик правки с этим изображением ждёт текст — следующее сообщение и есть
        # правка (ответ на картинку по-прежнему работает и без кнопки)
        reference = await db(drafts.output_reference)(user=user, job_id=job_id, index=index)
        if reference is None:
            return
        draft = await db(drafts.draft_new)(
            user=user, kind="image", model_slug=job.model.slug, refs=[reference]
        )
        draft["source_job"] = job.pk
        await db(drafts.draft_save)(user=user, draft=draft)
        await context.bot.send_message(user.telegram_id, _("Describe what to change in the image."))
        await _show_card(context, user, draft)
    elif action == "anim":
        reference = await db(drafts.output_reference)(user=user, job_id=job_id, index=index)
        if reference is None:
            return
        draft = await db(drafts.draft_new)(user=user, kind="video", refs=[reference])
        await db(drafts.draft_save)(user=user, draft=draft)
        await context.bot.send_message(user.telegram_id, _("Describe the motion for the video."))
        await _show_card(context, user, draft)


async def send_original(context: BotContext, user: TelegramUser, job: GenerationJob, index: int) -> None:
    """📎 Оригинал: по сохранённому file_id (бесплатно), иначе файлом из хранилища."""
    output = await db(JobOutput.objects.filter(job=job, index=index, status="ok").first)()
    if output is None:
        return
    if output.document_file_id and not output.document_file_id.startswith("link:"):
        await context.bot.send_document(user.telegram_id, output.document_file_id)
        return
    if output.video_file_id and not output.video_file_id.startswith("link:"):
        await context.bot.send_video(user.telegram_id, output.video_file_id)
        return
    from botapp.providers.storage import media_storage

    kind: MediaKind = "video" if job.kind == "video" else "image"
    data = await db(media_storage().get)(kind=kind, key=output.storage_key)
    sent = await context.bot.send_document(
        user.telegram_id,
        data,
        filename=f"nanobanana-{job.pk}-{index + 1}.{output.storage_key.rsplit('.', 1)[-1]}",
    )
    if sent.document and kind == "image":
        await db(JobOutput.objects.filter(pk=output.pk).update)(document_file_id=sent.document.file_id)
