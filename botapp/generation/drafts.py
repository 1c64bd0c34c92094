"""Черновик запроса (карточка перед запуском): живёт в ConversationState, а не в памяти процесса.

nonce черновика попадает в callback_data карточки: кнопки старой карточки не трогают новый
черновик, а ключ идемпотентности задания `draft:<user>:<nonce>` делает двойное нажатие одним заданием.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db import connection, transaction

from botapp.billing import ledger
from botapp.billing.errors import InsufficientFunds, PricingError
from botapp.generation.jobs import JobRefused, job_create, job_price, prompt_too_long, queue_position
from botapp.generation.media import STORED_PREFIX
from botapp.models import ConversationState, GenerationJob, GenerationModel, JobOutput, TelegramUser, rows
from botapp.users import services

DRAFT_STATE = "draft"
NEGATIVE_PROMPT_MAX = 500


@dataclass(frozen=True)
class Card:
    draft: dict[str, Any]
    model: GenerationModel
    price: int | None
    available: int

    @property
    def too_long(self) -> bool:
        return bool(self.draft["prompt"]) and prompt_too_long(self.model, self.draft["prompt"])


def models_for(kind: str) -> list[GenerationModel]:
    return list(GenerationModel.objects.filter(kind=kind, is_enabled=True).order_by("order"))


def model_get(slug: str, kind: str, *, exact: bool = False) -> GenerationModel:
    """Включённая модель slug, иначе модель вида по умолчанию — одним запросом (каждое задание из вебхука).

    exact — запуск по карточке: модель ровно та, что на карточке, даже выключенная (выключатель
    откажет с её текстом). Иначе пользователь заплатил бы за другую модель, чем видел.
    """
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT {rows.columns(GenerationModel, 'm')} FROM {rows.table(GenerationModel)} m "  # noqa: S608
            f"WHERE m.kind = %s AND (m.is_enabled OR (%s AND m.slug = %s)) "
            f"ORDER BY m.slug = %s DESC, m.is_default DESC, m.{quote('order')}, m.id LIMIT 1",
            [kind, exact, slug, slug],
        )
        row = cursor.fetchone()
    if row is None:
        raise LookupError(f"no enabled {kind} model")
    return rows.from_row(GenerationModel, row)


def model_min_price(model: GenerationModel) -> int | None:
    """«от N токенов» в выборе модели: самый дешёвый разрешённый запрос."""
    try:
        if model.kind == GenerationModel.Kind.IMAGE:
            return min(
                job_price(model=model, params={"size": s, "outputs": 1}, references=0)
                for s in model.image_sizes
            )
        return min(
            job_price(model=model, params={"duration": d, "resolution": r, "aspect_ratio": a}, references=0)
            for d, r, a in model.video_options
        )
    except (PricingError, ValueError):
        return None


def draft_new(*, user: TelegramUser, kind: str, model_slug: str = "", **fields: Any) -> dict[str, Any]:
    """Черновик с настройками пользователя по умолчанию."""
    model = model_get(model_slug or (user.default_image_model if kind == "image" else ""), kind)
    return _draft_for(model, user=user, **fields)


def _draft_for(model: GenerationModel, *, user: TelegramUser, **fields: Any) -> dict[str, Any]:
    kind = model.kind
    draft: dict[str, Any] = {
        "nonce": secrets.token_hex(4),
        "kind": kind,
        "model": model.slug,
        "prompt": "",
        "refs": [],
        # Лимит длины запроса модели: после «сократите» следующий текст заменяет запрос, а не начинает заново
        "prompt_limit": model.max_prompt_length,
    }
    if kind == "image":
        ratio = (
            user.default_aspect_ratio
            if user.default_aspect_ratio in model.aspect_ratios
            else model.aspect_ratios[0]
        )
        draft.update(
            aspect_ratio=ratio,
            size=model.image_sizes[0],
            outputs=min(user.default_outputs, model.max_outputs),
        )
    else:
        duration, resolution, aspect = model.video_options[0]
        draft.update(duration=duration, resolution=resolution, aspect_ratio=aspect)
    draft.update(fields)
    return draft


def draft_save(*, user: TelegramUser, draft: dict[str, Any]) -> None:
    services.conversation_set(user=user, state=DRAFT_STATE, data=draft)


def draft_get(
    *, user: TelegramUser, nonce: str | None = None, card_message_id: int | None = None
) -> dict[str, Any] | None:
    state = ConversationState.objects.filter(user=user, state=DRAFT_STATE).first()
    return draft_of(state, nonce=nonce, card_message_id=card_message_id)


def card_replaced(*, user: TelegramUser, nonce: str, card_message_id: int | None) -> bool:
    """Черновик жив, но его живая карточка — другое сообщение (прежняя копия)."""
    draft = draft_get(user=user, nonce=nonce)
    return draft is not None and _other_card(draft, card_message_id)


def _other_card(data: dict[str, Any], card_message_id: int | None) -> bool:
    """Нажали на сообщение, которое уже не живая карточка черновика (её id помним с отправки)."""
    live = data.get("card_message_id")
    return live is not None and card_message_id is not None and live != card_message_id


def draft_of(
    state: ConversationState | None, *, nonce: str | None = None, card_message_id: int | None = None
) -> dict[str, Any] | None:
    """Черновик из уже прочитанного шага диалога (вебхук читает его вместе с захватом апдейта).

    card_message_id — карточка, на которой нажали кнопку. Живая у черновика одна, последняя
    отправленная (её правят на месте); у прежних копий тот же nonce, но показывают они уже не то —
    «✅» на такой запустил бы не ту модель и не за ту цену, что на ней написаны.
    """
    if state is None or state.state != DRAFT_STATE:
        return None
    if nonce is not None and state.data.get("nonce") != nonce:
        return None
    if _other_card(state.data, card_message_id):
        return None
    return dict(state.data)


def draft_params(draft: dict[str, Any]) -> dict[str, Any]:
    if draft["kind"] == "image":
        return {"aspect_ratio": draft["aspect_ratio"], "size": draft["size"], "outputs": draft["outputs"]}
    params = {
        "duration": draft["duration"],
        "resolution": draft["resolution"],
        "aspect_ratio": draft["aspect_ratio"],
    }
    if draft.get("negative_prompt"):
        params["negative_prompt"] = draft["negative_prompt"]
    return params


def draft_await_negative(*, user: TelegramUser, draft: dict[str, Any]) -> None:
    """«➖ Избегать…» на карточке видео: следующий текст — негативный промпт, а не новый запрос."""
    if draft["kind"] == "video":
        draft_save(user=user, draft={**draft, "awaiting": "negative"})


def draft_card(*, user: TelegramUser, draft: dict[str, Any], model: GenerationModel | None = None) -> Card:
    """Карточка черновика: модель, цена и остаток; model — если уже прочитана тем же походом."""
    if model is None or model.slug != draft["model"] or model.kind != draft["kind"]:
        model = model_get(draft["model"], draft["kind"])
    try:
        price: int | None = job_price(model=model, params=draft_params(draft), references=len(draft["refs"]))
    except (PricingError, ValueError, KeyError):
        price = None
    return Card(draft=draft, model=model, price=price, available=ledger.account_for(user).available)


def draft_take_message(
    *, user: TelegramUser, draft: dict[str, Any] | None, text: str, photo: str | None
) -> tuple[dict[str, Any], Card]:
    """Текст или фото вне других шагов: дополнить или завести черновик, сохранить, собрать карточку.

    Один поход в БД из вебхука вместо четырёх (черновик, сохранение, модель, карточка).
    Сразу запуск без подтверждения — draft_take_and_start; фото альбомов — draft_take_album_photo.
    """
    draft, model = _draft_from_message(user=user, draft=draft, text=text, photo=photo)
    draft_save(user=user, draft=draft)
    return draft, draft_card(user=user, draft=draft, model=model)


def draft_take_and_start(
    *, user: TelegramUser, draft: dict[str, Any] | None, text: str, photo: str | None, reset: bool
) -> tuple[dict[str, Any], Started]:
    """Без подтверждения: черновик из сообщения и сразу задание — один поход в БД из вебхука.

    Черновик сохраняется, только если задание не создано: созданное всё равно сбрасывает шаг
    диалога. reset=False — шаг и так пуст (вебхук прочитал его с апдейтом): сбрасывать нечего.
    """
    draft, model = _draft_from_message(user=user, draft=draft, text=text, photo=photo)
    started = draft_start(user=user, draft=draft, model=model, reset=reset)
    if started.job is None:
        draft_save(user=user, draft=draft)
    return draft, started


def _draft_from_message(
    *, user: TelegramUser, draft: dict[str, Any] | None, text: str, photo: str | None
) -> tuple[dict[str, Any], GenerationModel | None]:
    """Черновик после сообщения и модель, если её пришлось прочитать (новый черновик)."""
    model = None
    if draft is not None and draft.get("awaiting") == "negative" and text and not photo:
        # Ответ на «➖ Избегать…» у видео: это не промпт, а то, чего в ролике быть не должно
        draft.pop("awaiting")
        draft["negative_prompt"] = "" if text == "-" else text[:NEGATIVE_PROMPT_MAX]
    elif draft is not None and not draft["prompt"] and (text or photo):
        # Черновик после выбора модели ждёт промпт (и, может быть, фото)
        draft["prompt"] = text or draft["prompt"]
        if photo:
            draft["refs"].append(photo)
    elif draft is not None and text and not photo and len(draft["prompt"]) > draft.get("prompt_limit", 10**9):
        # Карточка сказала «запрос слишком длинный, сократите»: короткий текст заменяет запрос, а модель,
        # фото и параметры черновика остаются
        draft["prompt"] = text
    else:
        kind = draft["kind"] if draft and not draft["prompt"] else "image"
        model = model_get(user.default_image_model if kind == "image" else "", kind)
        draft = _draft_for(model, user=user, prompt=text, refs=[photo] if photo else [])
    return draft, model


# Owner — первое фото альбома: подождёт остальные и пошлёт карточку; edit — карточка уже есть,
# поправить; quiet — фото добавлено, карточку пошлёт владелец
AlbumRole = str


def draft_take_album_photo(
    *, user: TelegramUser, text: str, photo: str, album: str
) -> tuple[dict[str, Any], AlbumRole]:
    """Фото альбома: дополнить черновик под блокировкой строки шага диалога.

    Telegram присылает фото альбома отдельными апдейтами, и они приходят параллельно: без
    блокировки два фото читают один черновик, и одно из них теряется, а карточек — две.
    Сверх лимита модели фото не берём, а считаем (карточка скажет, сколько учтено).
    """
    with transaction.atomic():
        services.conversation_ensure(user=user)
        state = ConversationState.objects.select_for_update().get(user=user)
        draft = draft_of(state)
        if draft is not None and draft.get("media_group") == album:
            role = "edit" if draft.get("card_message_id") else "quiet"
        elif draft is not None and not draft["prompt"] and not draft["refs"]:
            # Черновик после выбора модели ждёт промпт: альбом — его фото
            draft["media_group"] = album
            role = "owner"
        else:
            model = model_get(user.default_image_model, "image")
            draft = _draft_for(model, user=user, prompt="", refs=[])
            draft["media_group"] = album
            role = "owner"
        limit = model_get(draft["model"], draft["kind"]).max_reference_images
        if len(draft["refs"]) < limit:
            draft["refs"].append(photo)
        else:
            draft["refs_dropped"] = int(draft.get("refs_dropped", 0)) + 1
        draft["prompt"] = draft["prompt"] or text
        draft_save(user=user, draft=draft)
    return draft, role


def draft_set_card(*, user: TelegramUser, nonce: str, message_id: int) -> dict[str, Any] | None:
    """Запомнить сообщение карточки, не затирая фото, пришедшие, пока её отправляли."""
    with transaction.atomic():
        state = ConversationState.objects.select_for_update().filter(user=user).first()
        draft = draft_of(state, nonce=nonce)
        if draft is None:
            return None
        draft["card_message_id"] = message_id
        draft_save(user=user, draft=draft)
    return draft


def _cycle(values: list[Any], current: Any) -> Any:
    return values[(values.index(current) + 1) % len(values)] if current in values else values[0]


def draft_cycle(
    *, user: TelegramUser, nonce: str, param: str, card_message_id: int | None = None
) -> dict[str, Any] | None:
    """Кнопка карточки: следующее разрешённое каталогом значение параметра."""
    draft = draft_get(user=user, nonce=nonce, card_message_id=card_message_id)
    if draft is None:
        return None
    model = model_get(draft["model"], draft["kind"])
    if param == "model":
        slugs = [m.slug for m in models_for(draft["kind"])]
        kept = ("nonce", "prompt", "refs", "media_group", "negative_prompt", "card_message_id")
        keep = {k: draft[k] for k in kept if k in draft}
        draft = draft_new(user=user, kind=draft["kind"], model_slug=_cycle(slugs, draft["model"]), **keep)
        new_model = model_get(draft["model"], draft["kind"])
        draft["refs"] = draft["refs"][: new_model.max_reference_images]
    elif draft["kind"] == "image":
        options = {
            "ratio": ("aspect_ratio", model.aspect_ratios),
            "size": ("size", model.image_sizes),
            "count": ("outputs", list(range(1, model.max_outputs + 1))),
        }
        field, values = options[param]
        draft[field] = _cycle(values, draft[field])
    else:
        combos = [tuple(option) for option in model.video_options]
        current = (draft["duration"], draft["resolution"], draft["aspect_ratio"])
        position = {"duration": 0, "resolution": 1, "ratio": 2}[param]
        # Следующее значение параметра среди разрешённых троек, остальные — как можно ближе к тем, что
        # пользователь выбрал сам, затем к текущим. Выбор помнится: 1080p у Veo бывает только с 8 с, и без
        # памяти возврат к 720p оставлял бы 8 с вместо прежних 4
        values = sorted({c[position] for c in combos}, key=lambda v: [c[position] for c in combos].index(v))
        target = _cycle(values, current[position])
        wanted = list(draft.get("wanted") or current)
        wanted[position] = target
        candidates = [c for c in combos if c[position] == target]
        best = max(
            candidates,
            key=lambda c: (
                sum(c[i] == wanted[i] for i in range(3)),
                sum(c[i] == current[i] for i in range(3)),
            ),
        )
        draft.update(duration=best[0], resolution=best[1], aspect_ratio=best[2], wanted=wanted)
    draft_save(user=user, draft=draft)
    return draft


def draft_from_job(*, user: TelegramUser, job: GenerationJob) -> dict[str, Any]:
    """🔁 Ещё раз: тот же запрос новым черновиком."""
    draft = draft_new(user=user, kind=job.kind, model_slug=job.model.slug, prompt=job.prompt)
    draft.update(job.params)
    draft["refs"] = list(job.reference_file_ids)
    draft_save(user=user, draft=draft)
    return draft


def output_ref(output: JobOutput) -> str | None:
    """Результат как входное фото: наша копия, а после срока хранения — фото в Telegram (getFile)."""
    if output.storage_key:
        return f"{STORED_PREFIX}{output.storage_key}"
    return output.photo_file_id or None


def output_reference(*, user: TelegramUser, job_id: int, index: int) -> str | None:
    """Ссылка на результат пользователя (для «оживить»)."""
    output = JobOutput.objects.filter(job_id=job_id, job__user=user, index=index, status="ok").first()
    return output_ref(output) if output else None


def output_by_message(*, user: TelegramUser, message_id: int, photo_file_id: str = "") -> JobOutput | None:
    """Картинка-результат, на которую ответили: по сообщению доставки, иначе по file_id фото.

    Копии из галереи — другие сообщения с тем же file_id: ответ на них тоже правит результат.
    """
    images = JobOutput.objects.select_related("job").filter(job__user=user, job__kind="image", status="ok")
    found = images.filter(message_id=message_id).first()
    if found is None and photo_file_id:
        found = images.filter(photo_file_id=photo_file_id).first()
    return found


def user_cycle_default(*, user: TelegramUser, name: str) -> TelegramUser:
    """/settings: следующая модель, формат или количество по умолчанию (в пределах каталога)."""
    model = model_get(user.default_image_model, "image")
    if name == "model":
        user.default_image_model = _cycle([m.slug for m in models_for("image")], model.slug)
        field = "default_image_model"
    elif name == "ratio":
        user.default_aspect_ratio = _cycle(list(model.aspect_ratios), user.default_aspect_ratio)
        field = "default_aspect_ratio"
    elif name == "count":
        user.default_outputs = _cycle(list(range(1, model.max_outputs + 1)), user.default_outputs)
        field = "default_outputs"
    else:
        raise ValueError(name)
    user.save(update_fields=[field])
    return user


def default_model_name(*, user: TelegramUser) -> str:
    """Имя модели по умолчанию для /settings; пусто, если ни одна модель не включена."""
    try:
        return model_get(user.default_image_model, "image").display_name(user.effective_language)
    except LookupError:
        return ""


@dataclass(frozen=True)
class Started:
    """Итог «✅ Сгенерировать»: задание с местом в очереди, отказ или нехватка токенов."""

    job: GenerationJob | None = None
    position: int = 0
    eta_s: float = 0.0
    refused: JobRefused | None = None
    price: int | None = None
    available: int = 0


def draft_start(
    *,
    user: TelegramUser,
    draft: dict[str, Any],
    model: GenerationModel | None = None,
    reset: bool = True,
    shown_price: int | None = None,
) -> Started:
    """Один поход в БД из вебхука: задание с холдом (очередь по коммиту), сброс черновика, место и ETA.

    model — уже прочитанная тем же походом модель черновика; reset=False — шаг диалога и так пуст;
    shown_price — цена на карточке, которую подтвердил пользователь: дороже неё не списываем.
    """
    from botapp.generation import progress

    if model is None or model.slug != draft["model"] or model.kind != draft["kind"]:
        model = model_get(draft["model"], draft["kind"], exact=True)
    # Источник есть только у правки результата: без него — без лишнего запроса
    source_id = draft.get("source_job")
    source = GenerationJob.objects.filter(pk=source_id, user=user).first() if source_id else None
    try:
        job, _created = job_create(
            user=user,
            model=model,
            prompt=draft["prompt"],
            params=draft_params(draft),
            reference_file_ids=draft["refs"],
            idempotency_key=f"draft:{user.pk}:{draft['nonce']}",
            source_job=source,
            status_chat_id=user.telegram_id,
            price_limit=shown_price,
        )
    except JobRefused as refused:
        return Started(refused=refused)
    except InsufficientFunds:
        card = draft_card(user=user, draft=draft)
        return Started(price=card.price, available=card.available)
    if reset:
        services.conversation_set(user=user, state="")
    position = queue_position(job=job)
    return Started(job=job, position=position, eta_s=progress.job_eta(job=job, position=position))


def job_status_message_set(*, job_id: int, message_id: int) -> None:
    GenerationJob.objects.filter(pk=job_id, status_message_id__isnull=True).update(
        status_message_id=message_id
    )
