"""Рассылки в панели: проверка текста, аудитория, право, «сначала мне», переходы статусов, аренды."""

from __future__ import annotations

import io
from datetime import timedelta
from decimal import Decimal
from typing import Any

import pytest
from django.contrib.auth.models import Permission, User
from django.db import connection
from django.test import Client
from django.utils import timezone
from PIL import Image

from botapp.models import Payment, StaffAuditLog, TelegramUser
from botapp.sandbox.entities import parse_html
from botapp.sandbox.errors import ApiError
from botapp.tests.admin.conftest import verified_client
from botapp.tests.billing.factories import user_make
from dashboard.models import Broadcast, BroadcastRecipient, StaffProfile
from dashboard.selectors.broadcasts import broadcast_audience
from dashboard.services import broadcasts as service

pytestmark = pytest.mark.django_db


@pytest.fixture
def sender() -> User:
    user = User.objects.create_user("boris", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="send_broadcast"))
    return User.objects.get(pk=user.pk)  # сбросить кэш прав


@pytest.fixture
def client_sender(sender: User) -> Client:
    return verified_client(sender)


def _messages(response: Any) -> list[str]:
    return [str(message) for message in response.context["messages"]]


def _form(**fields: Any) -> dict[str, Any]:
    return {"text": "<b>Новости</b>", "audience": "all", **fields}


def _draft(staff: User, **fields: Any) -> Broadcast:
    return service.broadcast_create(staff=staff, **{"text": "Привет", "audience": "all", **fields})


def _png() -> io.BytesIO:
    data = io.BytesIO()
    Image.new("RGB", (8, 8), "red").save(data, format="PNG")
    data.seek(0)
    data.name = "photo.png"
    return data


# --- текст ----------------------------------------------------------------------------------------

VALID = [
    "<b>жирный</b> и <i>курсив</i>, <a href='https://example.com'>ссылка</a>",
    '<tg-spoiler>секрет</tg-spoiler> <span class="tg-spoiler">ещё</span> &lt;тег&gt; &amp; AT&T',
    '<pre><code class="language-python">print(1)</code></pre><blockquote expandable>цитата</blockquote>',
]
INVALID = [
    "<div>блок</div>",
    "<b>не закрыт",
    "<b><i>накрест</b></i>",
    "<a>без ссылки</a>",
    '<span class="x">не спойлер</span>',
    "1 < 2",
    "лишний </b>",
]


@pytest.mark.parametrize("text", VALID)
def test_telegram_html_is_accepted_as_the_emulator_parses_it(text: str) -> None:
    assert service.broadcast_text_errors(text=text, with_photo=False) == []
    parse_html(text)  # эмулятор Telegram тоже принимает


@pytest.mark.parametrize("text", INVALID)
def test_html_telegram_would_refuse_is_rejected(text: str) -> None:
    assert service.broadcast_text_errors(text=text, with_photo=False)


def test_the_rejected_texts_are_really_refused_by_the_emulator() -> None:
    refused = 0
    for text in INVALID:
        try:
            _plain, entities = parse_html(text)
        except ApiError:
            refused += 1
        else:
            # «<a>» без href эмулятор проглатывает без ссылки — мы всё равно не пропускаем пустую ссылку
            assert not any(e["type"] == "text_link" for e in entities)
    assert refused >= len(INVALID) - 2


def test_length_is_counted_on_visible_text_4096_or_1024_with_a_photo() -> None:
    assert service.broadcast_text_errors(text="<b>" + "я" * 4096 + "</b>", with_photo=False) == []
    assert service.broadcast_text_errors(text="я" * 4097, with_photo=False)
    assert service.broadcast_text_errors(text="😀" * 2049, with_photo=False)  # UTF-16: 2 единицы на эмодзи
    assert service.broadcast_text_errors(text="я" * 1024, with_photo=True) == []
    assert service.broadcast_text_errors(text="я" * 1025, with_photo=True)
    assert service.broadcast_text_errors(text="", with_photo=True) == []
    assert service.broadcast_text_errors(text="  ", with_photo=False)


def test_the_form_shows_html_errors_and_saves_nothing(client_sender: Client) -> None:
    response = client_sender.post("/dashboard/broadcasts/new/", _form(text="<div>x</div>"))
    assert response.status_code == 200
    assert "Telegram не поддерживает" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_a_long_caption_under_a_photo_is_refused(client_sender: Client) -> None:
    response = client_sender.post("/dashboard/broadcasts/new/", _form(text="x" * 1025, photo=_png()))
    assert "подпись к фото длиннее 1024" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_a_button_needs_both_text_and_url(client_sender: Client) -> None:
    response = client_sender.post("/dashboard/broadcasts/new/", _form(button_text="Открыть"))
    assert "и текст, и ссылка" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_a_scheduled_time_in_the_past_is_refused(client_sender: Client) -> None:
    past = (timezone.localtime() - timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M")
    response = client_sender.post("/dashboard/broadcasts/new/", _form(scheduled_at=past))
    assert "время уже прошло" in response.content.decode()


def test_ids_are_parsed_from_the_textarea_and_a_file(client_sender: Client) -> None:
    upload = io.BytesIO(b"300\n400;500\n")
    upload.name = "ids.txt"
    response = client_sender.post(
        "/dashboard/broadcasts/new/",
        _form(audience="ids", ids_text="100, 200 100", ids_file=upload, send_to_me=""),
    )
    assert response.status_code == 302
    assert Broadcast.objects.get().audience_ids == [100, 200, 300, 400, 500]


def test_ids_that_are_not_numbers_are_named_in_the_error(client_sender: Client) -> None:
    response = client_sender.post("/dashboard/broadcasts/new/", _form(audience="ids", ids_text="12 @bob -5"))
    assert "не Telegram id: @bob, -5" in response.content.decode()
    assert not Broadcast.objects.exists()


def test_a_valid_form_with_photo_and_button_saves_a_draft(client_sender: Client, sender: User) -> None:
    response = client_sender.post(
        "/dashboard/broadcasts/new/",
        _form(photo=_png(), button_text="Открыть", button_url="https://example.com/x", send_to_me=""),
    )
    broadcast = Broadcast.objects.get()
    assert response["Location"] == f"/dashboard/broadcasts/{broadcast.pk}/"
    assert (broadcast.status, broadcast.created_by, broadcast.button_url) == (
        "draft",
        sender,
        "https://example.com/x",
    )
    from botapp.providers.storage import media_storage

    assert media_storage().get(kind="image", key=broadcast.photo_key).startswith(b"\x89PNG")
    assert StaffAuditLog.objects.filter(action="broadcast.create", target_id=str(broadcast.pk)).exists()


# --- аудитория ----------------------------------------------------------------------------------


@pytest.fixture
def people() -> dict[str, TelegramUser]:
    """Разные пользователи: язык, оплата, давность, бан, блокировка."""
    made = {
        "ru": user_make(language="ru"),
        "en": user_make(language="en"),
        "picked_en": user_make(language="ru"),  # выбрал English в боте
        "no_lang": user_make(language=""),  # язык клиента неизвестен — русский
        "paid": user_make(language="en"),
        "stale": user_make(language="ru"),
        "banned": user_make(language="ru"),
        "blocked": user_make(language="en"),
    }
    TelegramUser.objects.filter(pk=made["picked_en"].pk).update(language="en")
    TelegramUser.objects.filter(pk=made["banned"].pk).update(is_banned=True)
    TelegramUser.objects.filter(pk=made["blocked"].pk).update(is_blocked=True)
    TelegramUser.objects.filter(pk=made["stale"].pk).update(last_seen_at=timezone.now() - timedelta(days=40))
    for user in (made["paid"], made["banned"]):
        Payment.objects.create(
            method="stars", external_id=f"c-{user.pk}", user=user, amount=Decimal(5), currency="XTR", tokens=5
        )
    return made


def _sql_count(where: str, params: list[Any] | None = None) -> int:
    """Независимый подсчёт прямым SQL (не тем же запросом, что у селектора)."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM botapp_telegramuser u "  # noqa: S608 — условия пишет сам тест
            "WHERE NOT u.is_banned AND NOT u.is_blocked "
            f"AND (u.data_erased_at IS NULL OR u.last_seen_at > u.data_erased_at) AND {where}",
            params or [],
        )
        return int(cursor.fetchone()[0])


def _names(people: dict[str, TelegramUser], users: Any) -> set[str]:
    ids = {user.pk for user in users}
    return {name for name, user in people.items() if user.pk in ids}


def test_everyone_means_all_but_banned_and_blocked(people: dict[str, TelegramUser]) -> None:
    users = broadcast_audience(audience="all")
    assert _names(people, users) == {"ru", "en", "picked_en", "no_lang", "paid", "stale"}
    assert users.count() == _sql_count("TRUE") == 6


def test_by_language_follows_the_language_chosen_in_the_bot(people: dict[str, TelegramUser]) -> None:
    assert _names(people, broadcast_audience(audience="language", language="en")) == {
        "en", "picked_en", "paid"
    }  # fmt: skip
    assert _names(people, broadcast_audience(audience="language", language="ru")) == {
        "ru",
        "no_lang",
        "stale",
    }
    english = (
        "(u.language = 'en' OR (u.language = '' AND u.language_code <> '' "
        "AND u.language_code NOT LIKE 'ru%%'))"
    )
    assert broadcast_audience(audience="language", language="en").count() == _sql_count(english)


def test_paid_means_having_a_payment(people: dict[str, TelegramUser]) -> None:
    assert _names(people, broadcast_audience(audience="paid")) == {"paid"}
    exists = "EXISTS (SELECT 1 FROM botapp_payment p WHERE p.user_id = u.id)"
    assert broadcast_audience(audience="paid").count() == _sql_count(exists) == 1


def test_active_counts_last_seen_within_n_days(people: dict[str, TelegramUser]) -> None:
    assert "stale" not in _names(people, broadcast_audience(audience="active", active_days=30))
    assert "stale" in _names(people, broadcast_audience(audience="active", active_days=41))
    recent = "u.last_seen_at >= now() - interval '30 days'"
    assert broadcast_audience(audience="active", active_days=30).count() == _sql_count(recent) == 5


def test_an_id_list_still_drops_banned_blocked_and_unknown(people: dict[str, TelegramUser]) -> None:
    ids = [people["ru"].telegram_id, people["banned"].telegram_id, people["blocked"].telegram_id, 999]
    assert _names(people, broadcast_audience(audience="ids", ids=ids)) == {"ru"}


def test_users_who_erased_their_data_get_no_broadcast_until_they_write_again() -> None:
    erased, came_back, other = user_make(language="ru"), user_make(language="ru"), user_make(language="ru")
    now = timezone.now()
    before, day_ago = now - timedelta(seconds=1), now - timedelta(days=1)
    TelegramUser.objects.filter(pk=erased.pk).update(data_erased_at=now, last_seen_at=before)
    TelegramUser.objects.filter(pk=came_back.pk).update(data_erased_at=day_ago, last_seen_at=now)
    for audience in ("all", "language", "active", "ids"):
        users = broadcast_audience(
            audience=audience,
            language="ru",
            active_days=30,
            ids=[u.telegram_id for u in (erased, came_back, other)],
        )
        assert set(users.values_list("pk", flat=True)) == {came_back.pk, other.pk}, audience


def test_saving_an_erased_user_elsewhere_does_not_bring_broadcasts_back() -> None:
    """Правка в админке — не визит пользователя: last_seen_at двигает только его апдейт."""
    user = user_make(language="ru")
    now = timezone.now()
    TelegramUser.objects.filter(pk=user.pk).update(
        data_erased_at=now, last_seen_at=now - timedelta(seconds=1)
    )
    erased = TelegramUser.objects.get(pk=user.pk)
    erased.is_banned = False
    erased.save()  # как форма админки: все поля
    assert not broadcast_audience(audience="ids", ids=[user.telegram_id]).exists()


def test_starting_materialises_each_recipient_once(people: dict[str, TelegramUser], sender: User) -> None:
    broadcast = _draft(sender, audience="language", language="en")
    service.broadcast_launch(broadcast_id=broadcast.pk, actor=sender)
    recipients = BroadcastRecipient.objects.filter(broadcast=broadcast)
    assert {r.user_id for r in recipients} == {people[n].pk for n in ("en", "picked_en", "paid")}
    assert {r.status for r in recipients} == {"pending"}
    assert service._materialise(broadcast) == 0  # повтор ничего не задваивает
    assert recipients.count() == 3
    audit = StaffAuditLog.objects.get(action="broadcast.start")
    assert audit.details["recipients"] == 3


def test_the_audience_counter_endpoint_counts_the_form_audience(
    people: dict[str, TelegramUser], client_sender: Client
) -> None:
    response = client_sender.get("/dashboard/broadcasts/audience/", {"audience": "paid"})
    assert response.json() == {"count": 1}


# --- доступ ---------------------------------------------------------------------------------------


def test_staff_without_the_broadcast_permission_get_403(sender: User) -> None:
    plain = User.objects.create_user("ivan", is_staff=True)
    broadcast = _draft(sender)
    client = verified_client(plain)
    pages = ("", "new/", f"{broadcast.pk}/", f"{broadcast.pk}/progress/")
    for url in (f"/dashboard/broadcasts/{page}" for page in pages):
        assert client.get(url).status_code == 403, url
    assert client.post(f"/dashboard/broadcasts/{broadcast.pk}/launch/").status_code == 403
    assert Broadcast.objects.get().status == "draft"


def test_anonymous_visitors_are_sent_to_the_login(sender: User) -> None:
    assert Client().get("/dashboard/broadcasts/")["Location"].startswith("/dashboard/login/")


def test_a_superuser_and_a_permitted_staff_member_see_the_pages(client_sender: Client, sender: User) -> None:
    broadcast = _draft(sender, text="<b>Скидки</b>")
    root = verified_client(User.objects.create_superuser("root", "r@example.invalid", "pw"))
    for client in (client_sender, root):
        assert "Скидки" in client.get("/dashboard/broadcasts/").content.decode()
        assert client.get(f"/dashboard/broadcasts/{broadcast.pk}/").status_code == 200
        assert client.get("/dashboard/broadcasts/new/").status_code == 200


# --- «сначала мне» --------------------------------------------------------------------------------


def test_send_to_me_without_a_linked_telegram_explains_why(client_sender: Client, sender: User) -> None:
    broadcast = _draft(sender)
    response = client_sender.post(f"/dashboard/broadcasts/{broadcast.pk}/preview/", follow=True)
    assert any("Telegram не привязан" in text for text in _messages(response))
    StaffProfile.objects.create(user=sender)  # профиль есть, Telegram — нет
    response = client_sender.post(f"/dashboard/broadcasts/{broadcast.pk}/preview/", follow=True)
    assert any("Telegram не привязан" in text for text in _messages(response))
    assert not StaffAuditLog.objects.filter(action="broadcast.preview").exists()


def test_the_form_saves_the_draft_even_if_send_to_me_is_impossible(client_sender: Client) -> None:
    response = client_sender.post("/dashboard/broadcasts/new/", _form(send_to_me="on"), follow=True)
    texts = _messages(response)
    assert any("сохранён" in text for text in texts)
    assert any("Telegram не привязан" in text for text in texts)
    assert Broadcast.objects.get().status == "draft"


# --- переходы статусов -----------------------------------------------------------------------------


def _act(client: Client, broadcast: Broadcast, action: str) -> list[str]:
    return _messages(client.post(f"/dashboard/broadcasts/{broadcast.pk}/{action}/", follow=True))


def _status(broadcast: Broadcast) -> str:
    return Broadcast.objects.get(pk=broadcast.pk).status


def test_launch_pause_resume_cancel_walk_through_the_states(client_sender: Client, sender: User) -> None:
    user_make()
    broadcast = _draft(sender)
    assert _act(client_sender, broadcast, "launch") == ["Рассылка запущена."]
    assert _status(broadcast) == "sending"
    assert _act(client_sender, broadcast, "pause") == ["Рассылка на паузе."]
    assert _status(broadcast) == "paused"
    assert _act(client_sender, broadcast, "resume") == ["Рассылка продолжается."]
    assert _status(broadcast) == "sending"
    assert _act(client_sender, broadcast, "cancel") == ["Рассылка отменена."]
    assert _status(broadcast) == "cancelled"
    assert Broadcast.objects.get(pk=broadcast.pk).finished_at is not None
    actions = list(StaffAuditLog.objects.order_by("pk").values_list("action", flat=True))
    assert actions == [
        "broadcast.create", "broadcast.start", "broadcast.paused", "broadcast.sending", "broadcast.cancelled"
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("status", "action"),
    [("draft", "pause"), ("draft", "resume"), ("sending", "resume"), ("sending", "launch"),
     ("paused", "pause"), ("done", "cancel"), ("cancelled", "resume"), ("scheduled", "launch")],
)  # fmt: skip
def test_impossible_transitions_are_refused(
    client_sender: Client, sender: User, status: str, action: str
) -> None:
    broadcast = _draft(sender)
    Broadcast.objects.filter(pk=broadcast.pk).update(status=status)
    [text] = _act(client_sender, broadcast, action)
    assert text.startswith("нельзя ")
    assert _status(broadcast) == status


def test_a_future_time_schedules_and_the_tick_starts_it_when_due(sender: User) -> None:
    user_make()
    broadcast = _draft(sender, scheduled_at=timezone.now() + timedelta(hours=1))
    assert service.broadcast_launch(broadcast_id=broadcast.pk, actor=sender).status == "scheduled"
    assert service.broadcasts_tick().started == 0
    Broadcast.objects.filter(pk=broadcast.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    assert service.broadcasts_tick().started == 1
    assert _status(broadcast) == "sending"
    assert BroadcastRecipient.objects.filter(broadcast=broadcast).count() == 1
    assert StaffAuditLog.objects.get(action="broadcast.start").details["reason"] == "schedule"


def test_a_scheduled_broadcast_can_be_cancelled_before_it_starts(sender: User) -> None:
    broadcast = _draft(sender, scheduled_at=timezone.now() + timedelta(minutes=5))
    service.broadcast_launch(broadcast_id=broadcast.pk, actor=sender)
    service.broadcast_cancel(broadcast_id=broadcast.pk, actor=sender)
    Broadcast.objects.filter(pk=broadcast.pk).update(scheduled_at=timezone.now() - timedelta(seconds=1))
    assert service.broadcasts_tick().started == 0
    assert _status(broadcast) == "cancelled"


def test_progress_json_counts_recipients_by_status(client_sender: Client, sender: User) -> None:
    for _ in range(4):
        user_make()
    broadcast = _draft(sender)
    service.broadcast_start(broadcast_id=broadcast.pk, actor=sender)
    first, second, *_rest = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("pk")
    BroadcastRecipient.objects.filter(pk=first.pk).update(status="sent")
    BroadcastRecipient.objects.filter(pk=second.pk).update(status="blocked")
    progress = client_sender.get(f"/dashboard/broadcasts/{broadcast.pk}/progress/").json()
    assert progress == {"status": "sending", "total": 4, "pending": 2, "sent": 1, "blocked": 1, "failed": 0}
    assert client_sender.get("/dashboard/broadcasts/999999/progress/").status_code == 404


# --- аренды и цикл отправки (без Telegram) -------------------------------------------------------


def _started(sender: User, users: int) -> Broadcast:
    for _ in range(users):
        user_make()
    broadcast = _draft(sender)
    service.broadcast_start(broadcast_id=broadcast.pk, actor=sender)
    return broadcast


def test_a_claim_skips_live_leases_and_takes_expired_ones(sender: User) -> None:
    broadcast = _started(sender, 3)
    live, expired, free = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("pk")
    now = timezone.now()
    BroadcastRecipient.objects.filter(pk=live.pk).update(lease_until=now + timedelta(seconds=30))
    BroadcastRecipient.objects.filter(pk=expired.pk).update(lease_until=now - timedelta(seconds=1))
    batch = service._claim(broadcast.pk, reclaim=None)
    assert [rid for rid, _chat in batch.rows] == [expired.pk, free.pk]
    assert service._claim(broadcast.pk, reclaim=None).rows == []  # оба теперь в аренде
    # Продолжение отложенной задачи забирает свою аренду по метке
    again = service._claim(broadcast.pk, reclaim=batch.token)
    assert [rid for rid, _chat in again.rows] == [expired.pk, free.pk]


def test_a_user_banned_after_the_launch_is_not_sent_the_broadcast(sender: User) -> None:
    broadcast = _started(sender, 3)
    first, banned, last = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("pk")
    TelegramUser.objects.filter(pk=banned.user_id).update(is_banned=True)
    batch = service._claim(broadcast.pk, reclaim=None)
    assert [rid for rid, _chat in batch.rows] == [first.pk, last.pk]
    banned.refresh_from_db()
    assert (banned.status, banned.error, banned.lease_until) == ("failed", "banned after the launch", None)


def test_a_user_who_erased_their_data_after_the_launch_is_not_sent_the_broadcast(sender: User) -> None:
    broadcast = _started(sender, 3)
    first, erased, last = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("pk")
    later = timezone.now() + timedelta(seconds=1)
    TelegramUser.objects.filter(pk=erased.user_id).update(data_erased_at=later)
    batch = service._claim(broadcast.pk, reclaim=None)
    assert [rid for rid, _chat in batch.rows] == [first.pk, last.pk]
    erased.refresh_from_db()
    assert (erased.status, erased.error) == ("failed", "erased their data after the launch")


def test_a_paused_or_cancelled_broadcast_sends_nothing(sender: User) -> None:
    broadcast = _started(sender, 2)
    service.broadcast_pause(broadcast_id=broadcast.pk, actor=sender)
    assert service.broadcast_send_run(broadcast_id=broadcast.pk).outcome == "stopped"
    service.broadcast_cancel(broadcast_id=broadcast.pk, actor=sender)
    assert service.broadcast_send_run(broadcast_id=broadcast.pk).outcome == "stopped"
    assert not BroadcastRecipient.objects.filter(broadcast=broadcast, lease_until__isnull=False).exists()


def test_the_tick_finishes_a_broadcast_with_nobody_left(sender: User) -> None:
    broadcast = _started(sender, 2)
    BroadcastRecipient.objects.filter(broadcast=broadcast).update(status="sent")
    report = service.broadcasts_tick()
    assert (report.finished, report.revived) == (1, 0)
    assert _status(broadcast) == "done"


def test_the_tick_revives_a_broadcast_whose_senders_died(sender: User) -> None:
    broadcast = _started(sender, 2)
    assert service.broadcasts_tick().revived == 0  # только что запущена: цепочки ещё не взяли пачку
    Broadcast.objects.filter(pk=broadcast.pk).update(started_at=timezone.now() - timedelta(minutes=5))
    first = BroadcastRecipient.objects.filter(broadcast=broadcast).order_by("pk").first()
    assert first is not None
    BroadcastRecipient.objects.filter(pk=first.pk).update(lease_until=timezone.now() + timedelta(seconds=30))
    assert service.broadcasts_tick().revived == 0  # живая аренда — цепочка работает
    BroadcastRecipient.objects.filter(pk=first.pk).update(lease_until=timezone.now() - timedelta(seconds=1))
    assert service.broadcasts_tick().revived == 1
