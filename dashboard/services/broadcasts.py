"""Рассылки: черновик, запуск (сейчас или по расписанию), пауза, возобновление, отмена и отправка.

Отправка. При запуске получатели материализуются одним INSERT … SELECT (уникальность
(рассылка, пользователь) — в БД). Задачи delivery.broadcast_send забирают пачки «ожидающих»
условным UPDATE с FOR UPDATE SKIP LOCKED, ставя lease_until: значение аренды — ещё и метка
владельца (перед каждой отправкой аренда продлевается условием «lease_until = моя метка»,
поэтому получателя, чью аренду успел забрать другой, отправитель пропускает).

Сколько раз получатель увидит сообщение. Получатель помечается sent сразу после ответа
Telegram. Гибель воркера между ответом Telegram и этой отметкой (миллисекунды) приводит к
повтору ровно этого сообщения, когда истечёт его аренда: в худшем случае одно сообщение
на цепочку задач уйдёт дважды. То же — при тайм-ауте сети (доставлено ли, неизвестно).
Все остальные получатели после перезапуска не получают ничего повторно: отмеченные не
выбираются, а незавершённые аренды просто истекают и забираются снова.
"""

from __future__ import annotations

import functools
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from html.parser import HTMLParser
from typing import Any, Literal

from django.db import connection, transaction
from django.utils import timezone
from telegram import InlineKeyboardButton, InlineKeyboardMarkup
from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError

from botapp.billing.audit import audit_record
from botapp.telegram.formatting import CAPTION_LIMIT, MESSAGE_LIMIT, visible_length
from botapp.telegram.sender import RecipientBlocked, SendDeferred
from dashboard.models import Broadcast, BroadcastRecipient, StaffProfile
from dashboard.selectors.broadcasts import broadcast_audience_of

BATCH_SIZE = 20
# Параллельных цепочек задач на рассылку: одна упирается в задержку HTTP, две держат лимит 30/с
CHAINS = 2
# Захваченная пачка должна начать уходить за это время, иначе её заберут снова
CLAIM_LEASE_S = 15
# Тайм-ауты одного вызова (сумма с запасом меньше аренды «в полёте»)
SEND_TIMEOUTS: dict[str, float] = {"connect_timeout": 5, "read_timeout": 20, "write_timeout": 30}
SEND_LEASE_S = 75
# Одна задача шлёт не дольше: очередь delivery не простаивает для доставки генераций
RUN_BUDGET_S = 10
NETWORK_RETRY_S = 5
PHOTO_MAX_BYTES = 10 * 1024 * 1024
IDS_MAX = 100_000

_TAGS = frozenset(
    {"b", "strong", "i", "em", "u", "ins", "s", "strike", "del", "tg-spoiler", "span", "a", "code", "pre",
     "blockquote", "tg-emoji"}
)  # fmt: skip
_ID_SPLIT = re.compile(r"[\s,;]+")


class BroadcastError(Exception):
    """Действие с рассылкой невозможно; текст — для персонала."""


class BroadcastNotLinked(BroadcastError):
    """У сотрудника не привязан Telegram: «сначала мне» отправить некуда."""


# --- проверка ввода ---------------------------------------------------------------------------------


class _HtmlCheck(HTMLParser):
    """Разбор как у Telegram: только его теги, правильная вложенность, у <a> есть href."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.errors: list[str] = []
        self.stack: list[str] = []
        self.visible: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag not in _TAGS:
            self.errors.append(f"тег <{tag}> Telegram не поддерживает")
        elif tag == "span" and values.get("class") != "tg-spoiler":
            self.errors.append('<span> допустим только с class="tg-spoiler"')
        elif tag == "a" and not values.get("href"):
            self.errors.append("у ссылки <a> нет href")
        self.stack.append(tag)

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.errors.append(f"самозакрывающийся тег <{tag}/> Telegram не поддерживает")

    def handle_endtag(self, tag: str) -> None:
        if not self.stack:
            self.errors.append(f"лишний закрывающий тег </{tag}>")
        elif self.stack[-1] != tag:
            self.errors.append(f"</{tag}> закрывает не тот тег: открыт <{self.stack[-1]}>")
        else:
            self.stack.pop()

    def handle_data(self, data: str) -> None:
        self.visible.append(data)


def broadcast_text_errors(*, text: str, with_photo: bool) -> list[str]:
    """Ошибки HTML Telegram и длины (видимый текст в UTF-16: 4096, с фото — подпись 1024)."""
    if not text.strip():
        return [] if with_photo else ["нужен текст"]
    check = _HtmlCheck()
    check.feed(text)
    check.close()
    errors = list(dict.fromkeys(check.errors))
    if check.stack:
        errors.append(f"не закрыт тег <{check.stack[-1]}>")
    if re.search(r"<(?![a-zA-Z/])", text):
        errors.append("символ «<» вне тега: пишите &lt;")
    limit = CAPTION_LIMIT if with_photo else MESSAGE_LIMIT
    length = visible_length("".join(check.visible))
    if length > limit:
        what = "подпись к фото" if with_photo else "текст"
        errors.append(f"{what} длиннее {limit} символов ({length})")
    return errors


def broadcast_ids_parse(*, raw: str) -> list[int]:
    """Telegram id через пробелы, запятые или строки; ValueError с понятным текстом — если что-то не id."""
    ids: list[int] = []
    bad: list[str] = []
    for token in _ID_SPLIT.split(raw.strip()):
        if not token:
            continue
        if token.isdigit() and 0 < int(token) < 2**63:
            ids.append(int(token))
        else:
            bad.append(token)
    if bad:
        raise ValueError("не Telegram id: " + ", ".join(bad[:5]) + (" …" if len(bad) > 5 else ""))
    unique = list(dict.fromkeys(ids))
    if len(unique) > IDS_MAX:
        raise ValueError(f"больше {IDS_MAX} id")
    return unique


# --- черновик и переходы ----------------------------------------------------------------------------


def broadcast_create(
    *,
    staff: Any,
    text: str,
    audience: str,
    photo: bytes | None = None,
    photo_content_type: str = "",
    button_text: str = "",
    button_url: str = "",
    language: str = "",
    active_days: int | None = None,
    ids: Sequence[int] = (),
    scheduled_at: datetime | None = None,
) -> Broadcast:
    """Черновик рассылки (фото — в хранилище медиа). BroadcastError — если текст не пройдёт в Telegram."""
    errors = broadcast_text_errors(text=text, with_photo=photo is not None)
    if errors:
        raise BroadcastError("; ".join(errors))
    if bool(button_text) != bool(button_url):
        raise BroadcastError("у кнопки нужны и текст, и ссылка")
    if audience not in Broadcast.Audience.values:
        raise BroadcastError(f"неизвестная аудитория {audience!r}")
    with transaction.atomic():
        broadcast = Broadcast.objects.create(
            created_by=staff,
            text=text,
            button_text=button_text,
            button_url=button_url,
            audience=audience,
            audience_language=language if audience == Broadcast.Audience.LANGUAGE else "",
            audience_active_days=active_days if audience == Broadcast.Audience.ACTIVE else None,
            audience_ids=list(ids) if audience == Broadcast.Audience.IDS else [],
            scheduled_at=scheduled_at,
        )
        if photo is not None:
            from botapp.providers.storage import media_storage

            broadcast.photo_key = f"broadcasts/{broadcast.pk}/photo"
            media_storage().put(
                kind="image", key=broadcast.photo_key, data=photo, content_type=photo_content_type
            )
            broadcast.save(update_fields=["photo_key"])
        audit_record(
            actor=staff,
            action="broadcast.create",
            target=broadcast,
            details={
                "audience": audience,
                "photo": photo is not None,
                "scheduled_at": str(scheduled_at or ""),
            },
        )
    return broadcast


def _locked(broadcast_id: int, allowed: Iterable[str], verb: str) -> Broadcast:
    broadcast = Broadcast.objects.select_for_update().get(pk=broadcast_id)
    if broadcast.status not in allowed:
        raise BroadcastError(f"нельзя {verb}: рассылка {broadcast.get_status_display()}")
    return broadcast


def _materialise(broadcast: Broadcast) -> int:
    """Получатели одним INSERT … SELECT; повтор ничего не задваивает (уникальность в БД)."""
    users_sql, params = broadcast_audience_of(broadcast=broadcast).values("pk").query.sql_with_params()
    table = BroadcastRecipient._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (broadcast_id, user_id, status, error) "  # noqa: S608 — имена из модели
            f"SELECT %s, audience.id, %s, '' FROM ({users_sql}) AS audience (id) "
            "ON CONFLICT (broadcast_id, user_id) DO NOTHING",
            [broadcast.pk, BroadcastRecipient.Status.PENDING, *params],
        )
        return int(cursor.rowcount)


def _kick(broadcast_id: int, chains: int = CHAINS) -> None:
    from dashboard.tasks import broadcast_send

    for _ in range(chains):
        broadcast_send.delay(broadcast_id)


def broadcast_start(*, broadcast_id: int, actor: Any, reason: str = "staff") -> Broadcast:
    """Черновик или запланированная → отправляется: получатели фиксируются сейчас, задачи — после коммита."""
    with transaction.atomic():
        broadcast = _locked(broadcast_id, (Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED), "запустить")
        count = _materialise(broadcast)
        broadcast.status = Broadcast.Status.SENDING
        broadcast.started_at = timezone.now()
        broadcast.save(update_fields=["status", "started_at"])
        audit_record(
            actor=actor,
            action="broadcast.start",
            target=broadcast,
            details={"recipients": count, "reason": reason},
        )
        transaction.on_commit(lambda: _kick(broadcast_id))
    return broadcast


def broadcast_launch(*, broadcast_id: int, actor: Any) -> Broadcast:
    """Кнопка «Запустить»: время в будущем — запланировать, иначе отправлять сейчас."""
    with transaction.atomic():
        broadcast = _locked(broadcast_id, (Broadcast.Status.DRAFT,), "запустить")
        if broadcast.scheduled_at is None or broadcast.scheduled_at <= timezone.now():
            return broadcast_start(broadcast_id=broadcast_id, actor=actor)
        broadcast.status = Broadcast.Status.SCHEDULED
        broadcast.save(update_fields=["status"])
        audit_record(
            actor=actor,
            action="broadcast.schedule",
            target=broadcast,
            details={"scheduled_at": broadcast.scheduled_at.isoformat()},
        )
    return broadcast


def _transition(broadcast_id: int, actor: Any, allowed: Iterable[str], to: str, verb: str) -> Broadcast:
    with transaction.atomic():
        broadcast = _locked(broadcast_id, allowed, verb)
        before = broadcast.status
        broadcast.status = to
        fields = ["status"]
        if to == Broadcast.Status.CANCELLED:
            broadcast.finished_at = timezone.now()
            fields.append("finished_at")
        broadcast.save(update_fields=fields)
        audit_record(actor=actor, action=f"broadcast.{to}", target=broadcast, details={"from": before})
    return broadcast


def broadcast_pause(*, broadcast_id: int, actor: Any) -> Broadcast:
    """Отправители видят паузу перед следующим сообщением и отпускают свои пачки."""
    return _transition(
        broadcast_id, actor, (Broadcast.Status.SENDING,), Broadcast.Status.PAUSED, "приостановить"
    )


def broadcast_resume(*, broadcast_id: int, actor: Any) -> Broadcast:
    broadcast = _transition(
        broadcast_id, actor, (Broadcast.Status.PAUSED,), Broadcast.Status.SENDING, "возобновить"
    )
    transaction.on_commit(lambda: _kick(broadcast_id))
    return broadcast


def broadcast_cancel(*, broadcast_id: int, actor: Any) -> Broadcast:
    """Отмена: оставшиеся «ожидающие» так и не получат сообщение."""
    allowed = (
        Broadcast.Status.DRAFT, Broadcast.Status.SCHEDULED, Broadcast.Status.SENDING, Broadcast.Status.PAUSED,
    )  # fmt: skip
    return _transition(broadcast_id, actor, allowed, Broadcast.Status.CANCELLED, "отменить")


# --- отправка одного сообщения -----------------------------------------------------------------------


@dataclass
class _Message:
    text: str
    markup: InlineKeyboardMarkup | None
    photo_key: str
    photo_file_id: str
    photo_bytes: bytes | None = None


def _message_of(broadcast: Broadcast) -> _Message:
    markup = None
    if broadcast.button_text and broadcast.button_url:
        markup = InlineKeyboardMarkup(
            [[InlineKeyboardButton(broadcast.button_text, url=broadcast.button_url)]]
        )
    return _Message(broadcast.text, markup, broadcast.photo_key, broadcast.photo_file_id)


def _deliver(broadcast_id: int, message: _Message, chat_id: int) -> int:
    """Одно сообщение через общий лимитер; вернуть message_id. Первое фото запоминает file_id."""
    from botapp.telegram.outbound import bot_call
    from botapp.telegram.sender import BROADCAST

    if message.photo_key and not message.photo_file_id and message.photo_bytes is None:
        from botapp.providers.storage import media_storage

        message.photo_bytes = media_storage().get(kind="image", key=message.photo_key)

    async def send(bot: Any) -> Any:
        if message.photo_key:
            return await bot.send_photo(
                chat_id,
                message.photo_file_id or message.photo_bytes,
                caption=message.text or None,
                parse_mode=ParseMode.HTML,
                reply_markup=message.markup,
                rate_limit_args=BROADCAST,
                **SEND_TIMEOUTS,
            )
        return await bot.send_message(
            chat_id,
            message.text,
            parse_mode=ParseMode.HTML,
            reply_markup=message.markup,
            rate_limit_args=BROADCAST,
            **SEND_TIMEOUTS,
        )

    sent = bot_call(send)
    if message.photo_key and not message.photo_file_id and sent.photo:
        message.photo_file_id = sent.photo[-1].file_id
        Broadcast.objects.filter(pk=broadcast_id, photo_file_id="").update(
            photo_file_id=message.photo_file_id
        )
    return int(sent.message_id)


def broadcast_preview_send(*, broadcast_id: int, staff: Any) -> int:
    """«Сначала мне»: то же сообщение в Telegram сотрудника. Пробрасывает SendDeferred и ошибки Telegram."""
    broadcast = Broadcast.objects.get(pk=broadcast_id)
    profile = StaffProfile.objects.filter(user=staff).first()
    if profile is None or profile.telegram_id is None:
        raise BroadcastNotLinked("Ваш Telegram не привязан: привяжите его в разделе «Поддержка → Telegram».")
    message_id = _deliver(broadcast.pk, _message_of(broadcast), profile.telegram_id)
    audit_record(
        actor=staff,
        action="broadcast.preview",
        target=broadcast,
        details={"telegram_id": profile.telegram_id},
    )
    return message_id


# --- отправка пачками --------------------------------------------------------------------------------


@dataclass(frozen=True)
class SendRun:
    """Исход одного запуска задачи: continue/deferred — поставить себя снова через countdown."""

    outcome: Literal["continue", "deferred", "stopped", "idle"]
    countdown: float = 0.0
    token: str = ""  # аренда, которую продолжение заберёт первой (отложенный остаток пачки)
    sent: int = 0


@dataclass
class _Batch:
    token: datetime
    rows: list[tuple[int, int]] = field(default_factory=list)  # (id получателя, telegram id)


_CLAIM_SQL = """
UPDATE {table} AS r SET lease_until = %(lease)s
FROM (
    SELECT id FROM {table}
    WHERE broadcast_id = %(broadcast)s AND status = %(pending)s
      AND (lease_until IS NULL OR lease_until < %(now)s OR lease_until = %(reclaim)s)
    ORDER BY id LIMIT %(limit)s
    FOR UPDATE SKIP LOCKED
) AS picked, {users} AS u
WHERE r.id = picked.id AND u.id = r.user_id
RETURNING r.id, u.telegram_id, CASE
    WHEN u.is_banned THEN 'banned after the launch'
    WHEN u.data_erased_at IS NOT NULL AND u.last_seen_at <= u.data_erased_at
        THEN 'erased their data after the launch'
    ELSE '' END
"""


def _claim(broadcast_id: int, reclaim: datetime | None) -> _Batch:
    from botapp.models import TelegramUser

    now = timezone.now()
    batch = _Batch(token=now + timedelta(seconds=CLAIM_LEASE_S))
    sql = _CLAIM_SQL.format(table=BroadcastRecipient._meta.db_table, users=TelegramUser._meta.db_table)
    params: dict[str, Any] = {
        "lease": batch.token,
        "broadcast": broadcast_id,
        "pending": BroadcastRecipient.Status.PENDING,
        "now": now,
        "reclaim": reclaim,
        "limit": BATCH_SIZE,
    }
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)
        claimed = cursor.fetchall()
        # Получатели зафиксированы при запуске, а рассылка на 100 тыс. идёт около часа: забаненному
        # (бан — «ничего, кроме одного сообщения в сутки») и стёршему данные за это время не пишем
        for reason in {reason for _rid, _chat, reason in claimed if reason}:
            dropped = [rid for rid, _chat, why in claimed if why == reason]
            BroadcastRecipient.objects.filter(pk__in=dropped).update(
                status=BroadcastRecipient.Status.FAILED, lease_until=None, error=reason
            )
        batch.rows = sorted((int(rid), int(chat)) for rid, chat, reason in claimed if not reason)
    return batch


def _pending(ids: Iterable[int], tokens: Iterable[datetime]) -> Any:
    return BroadcastRecipient.objects.filter(
        pk__in=list(ids), status=BroadcastRecipient.Status.PENDING, lease_until__in=list(tokens)
    )


def _mark(recipient_id: int, status: str, *, message_id: int | None = None, error: str = "") -> None:
    BroadcastRecipient.objects.filter(pk=recipient_id, status=BroadcastRecipient.Status.PENDING).update(
        status=status,
        lease_until=None,
        message_id=message_id,
        error=error[:200],
        sent_at=timezone.now() if status == BroadcastRecipient.Status.SENT else None,
    )


def _still_sending(broadcast_id: int) -> bool:
    status = Broadcast.objects.filter(pk=broadcast_id).values_list("status", flat=True).first()
    return status == Broadcast.Status.SENDING


def _send_batch(broadcast_id: int, message: _Message, batch: _Batch) -> tuple[SendRun | None, int]:
    """Отправить пачку; SendRun — если цепочку надо прервать (пауза, отмена, лимит, сеть)."""
    sent = 0
    for index, (recipient_id, chat_id) in enumerate(batch.rows):
        rest = [rid for rid, _chat in batch.rows[index:]]
        if not _still_sending(broadcast_id):
            _pending(rest, [batch.token]).update(lease_until=None)
            return SendRun("stopped", sent=sent), sent
        in_flight = timezone.now() + timedelta(seconds=SEND_LEASE_S)
        if not _pending([recipient_id], [batch.token]).update(lease_until=in_flight):
            continue  # аренду забрал другой отправитель
        try:
            message_id = _deliver(broadcast_id, message, chat_id)
        except SendDeferred as deferred:
            # Остаток пачки держим за собой до продолжения: метка аренды уходит в задачу
            countdown = max(0.05, deferred.retry_after)
            hold = timezone.now() + timedelta(seconds=countdown + CLAIM_LEASE_S)
            _pending(rest, [batch.token, in_flight]).update(lease_until=hold)
            return SendRun("deferred", countdown=countdown, token=hold.isoformat(), sent=sent), sent
        except RecipientBlocked:
            _mark(recipient_id, BroadcastRecipient.Status.BLOCKED, error="bot blocked by user")
        except (BadRequest, Forbidden) as exc:
            _mark(recipient_id, BroadcastRecipient.Status.FAILED, error=str(exc))
        except NetworkError:
            # Дошло ли — неизвестно: этот получатель ждёт конца аренды «в полёте», остаток — повтора
            _pending(rest[1:], [batch.token]).update(lease_until=None)
            return SendRun("deferred", countdown=NETWORK_RETRY_S, sent=sent), sent
        except TelegramError as exc:
            _mark(recipient_id, BroadcastRecipient.Status.FAILED, error=str(exc))
        else:
            _mark(recipient_id, BroadcastRecipient.Status.SENT, message_id=message_id)
            sent += 1
    return None, sent


def _finish_if_done(broadcast_id: int) -> bool:
    with transaction.atomic():
        left = BroadcastRecipient.objects.filter(
            broadcast_id=broadcast_id, status=BroadcastRecipient.Status.PENDING
        ).exists()
        if left:
            return False
        return bool(
            Broadcast.objects.filter(pk=broadcast_id, status=Broadcast.Status.SENDING).update(
                status=Broadcast.Status.DONE, finished_at=timezone.now()
            )
        )


def broadcast_send_run(*, broadcast_id: int, token: str = "", budget_s: float = RUN_BUDGET_S) -> SendRun:
    """Одна задача цепочки: пачка за пачкой, пока есть ожидающие и не исчерпан бюджет времени.

    Безопасна при повторе и параллельном запуске: пачки не пересекаются (SKIP LOCKED), отметки
    условны (status = pending). Никогда не спит дольше, чем ждёт лимитер на месте (0,5 с).
    """
    broadcast = Broadcast.objects.filter(pk=broadcast_id).first()
    if broadcast is None or broadcast.status != Broadcast.Status.SENDING:
        return SendRun("stopped")
    message = _message_of(broadcast)
    reclaim = datetime.fromisoformat(token) if token else None
    deadline = time.monotonic() + budget_s
    total = 0
    while time.monotonic() < deadline:
        batch = _claim(broadcast_id, reclaim)
        reclaim = None
        if not batch.rows:
            _finish_if_done(broadcast_id)
            return SendRun("idle", sent=total)
        stop, sent = _send_batch(broadcast_id, message, batch)
        total += sent
        if stop is not None:
            return SendRun(stop.outcome, countdown=stop.countdown, token=stop.token, sent=total)
    return SendRun("continue", sent=total)


@dataclass(frozen=True)
class TickReport:
    started: int
    revived: int
    finished: int


def broadcasts_tick() -> TickReport:
    """По расписанию: запустить наступившие, поднять осиротевшие (нет живой аренды), завершить готовые."""
    now = timezone.now()
    started = revived = finished = 0
    due = Broadcast.objects.filter(status=Broadcast.Status.SCHEDULED, scheduled_at__lte=now)
    for broadcast in due.select_related("created_by"):
        try:
            broadcast_start(broadcast_id=broadcast.pk, actor=broadcast.created_by, reason="schedule")
        except BroadcastError:
            continue  # успели отменить или запустить вручную
        started += 1
    quiet_since = now - timedelta(seconds=CLAIM_LEASE_S)
    sending = Broadcast.objects.filter(status=Broadcast.Status.SENDING).values_list("pk", "started_at")
    for broadcast_id, started_at in list(sending):
        if _finish_if_done(broadcast_id):
            finished += 1
            continue
        if started_at is not None and started_at >= quiet_since:
            continue  # только что запущена: первые цепочки ещё могут быть в очереди
        recipients = BroadcastRecipient.objects.filter(broadcast_id=broadcast_id)
        pending = recipients.filter(status=BroadcastRecipient.Status.PENDING)
        alive = (
            pending.filter(lease_until__gte=now).exists()
            or recipients.filter(sent_at__gte=quiet_since).exists()
        )
        if not alive:
            # Цепочки погибли вместе с воркером: их сообщения брокер вернёт лишь через visibility_timeout
            transaction.on_commit(functools.partial(_kick, broadcast_id))
            revived += 1
    return TickReport(started=started, revived=revived, finished=finished)
