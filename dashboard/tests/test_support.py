"""Панель: поддержка — ветка из настоящего вебхука, ответ сотрудника через эмулятор, оповещение, привязка."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client, override_settings
from django.utils import timezone

from botapp.models import ChatLogEntry, StaffAuditLog, TelegramUser
from botapp.sandbox import services as sandbox
from botapp.telegram import outbound
from botapp.tests.admin.conftest import form_nonce, verified_client
from botapp.tests.sandbox.conftest import (  # noqa: F401 — общая фикстура
    _fresh_rate_limits,
    png,
    sandbox_mode_server,
)
from botapp.tests.telegram.conftest import _server_sees_test_data  # noqa: F401
from botapp.tests.telegram.test_chat_paths import Chat
from dashboard.models import StaffProfile, SupportThread
from dashboard.services.support import reply_framed

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


@pytest.fixture
def bot_api(sandbox_mode_server: str) -> Iterator[str]:  # noqa: F811
    """Вызовы Bot API из этого процесса (ответы панели) — в эмулятор того же сервера."""
    with override_settings(TELEGRAM_API_BASE_URL=f"{sandbox_mode_server}/sandbox/api"):
        outbound.bot_reset()
        yield sandbox_mode_server
        outbound.bot_reset()


@pytest.fixture
def staff() -> User:
    return User.objects.create_user("olga", password="pw", is_staff=True)  # pragma: allowlist secret


def _ask_support(chat: Chat, text: str) -> None:
    chat.say("/support")
    chat.say(text)


def _reply(client: Client, thread: SupportThread, data: dict[str, Any]) -> list[str]:
    """Ответ из панели, как сотрудник: лимит чата общий с ботом (он только что ответил) — повторить позже.

    Повтор — той же формой (тот же nonce): не отправленное точно можно отправить снова.
    """
    data = {"nonce": form_nonce(client, f"/dashboard/support/{thread.pk}/"), **data}
    for _attempt in range(5):
        response = client.post(f"/dashboard/support/{thread.pk}/reply/", data, follow=True)
        notes = _messages(response)
        if not any(note.startswith("Лимит Telegram") for note in notes):
            return notes
        time.sleep(1.2)
    return notes


def _messages(response: Any) -> list[str]:
    return [str(m) for m in response.context["messages"]]


def _thread(chat: Chat) -> SupportThread:
    return SupportThread.objects.get(user__telegram_id=chat.chat_id)


def test_a_support_message_through_the_webhook_opens_a_thread_with_one_unread(
    sandbox_mode_server: str,  # noqa: F811
) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    chat.say("just a prompt, not for support")
    assert not SupportThread.objects.filter(user__telegram_id=chat.chat_id).exists()
    _ask_support(chat, "My payment did not arrive")
    thread = _thread(chat)
    assert (thread.unread_count, thread.status) == (1, SupportThread.Status.OPEN)
    assert thread.last_user_message_at is not None
    _ask_support(chat, "Still nothing")
    assert _thread(chat).unread_count == 2


def test_the_inbox_lists_threads_by_activity_with_unread_counts(staff: User) -> None:
    quiet = TelegramUser.objects.create(telegram_id=9_100_001, first_name="Quiet")
    busy = TelegramUser.objects.create(telegram_id=9_100_002, first_name="Busy")
    SupportThread.objects.create(user=quiet, last_activity_at=timezone.now() - timedelta(hours=1))
    SupportThread.objects.create(user=busy, unread_count=3, last_activity_at=timezone.now())
    page = verified_client(staff).get("/dashboard/support/").content.decode()
    assert page.index("Busy") < page.index("Quiet")
    assert '<span class="bad unread">3</span>' in page


def test_a_staff_reply_reaches_the_user_and_is_recorded_once_with_its_author(
    bot_api: str, staff: User
) -> None:
    chat = Chat(bot_api, "ru")
    _ask_support(chat, "Где мои токены?")
    thread = _thread(chat)
    client = verified_client(staff)
    page = client.get(f"/dashboard/support/{thread.pk}/").content.decode()
    assert "Где мои токены?" in page
    assert _reply(client, thread, {"text": "Токены вернули, проверьте /balance"}) == ["Отправлено."]
    assert chat.bot_messages()[-1].text.splitlines()[1] == "Токены вернули, проверьте /balance"
    # В журнале — слова сотрудника, без подписи «Поддержка» и подсказки
    [entry] = ChatLogEntry.objects.filter(
        user__telegram_id=chat.chat_id, text="Токены вернули, проверьте /balance"
    )
    assert (entry.direction, entry.is_support, entry.staff_author_id) == ("out", True, staff.pk)
    assert _thread(chat).unread_count == 0
    assert StaffAuditLog.objects.filter(action="support.reply", actor=staff).count() == 1
    # В диалоге панели видны обе стороны и автор ответа
    page = client.get(f"/dashboard/support/{thread.pk}/").content.decode()
    assert "поддержка · olga" in page
    assert "Где мои токены?" in page


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_staff_reply_is_signed_as_support_in_the_users_language_and_says_how_to_answer(
    bot_api: str, staff: User, language: str
) -> None:
    """Без подписи ответ сотрудника выглядел как обычное сообщение бота; разметка сотрудника — текст."""
    chat = Chat(bot_api, language)
    _ask_support(chat, "Where are my tokens?")
    text = "Tokens are back: 1 < 2 & <b>not bold</b>"
    assert _reply(verified_client(staff), _thread(chat), {"text": text}) == ["Отправлено."]
    answer = chat.bot_messages()[-1]
    label, hint = chat.expected("💬 Support:"), chat.expected("Reply to this message to answer support.")
    assert answer.text == f"{label}\n{text}\n\n{hint}"
    assert label == {"ru": "💬 Поддержка:", "en": "💬 Support:"}[language]
    assert (
        ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, is_support=True, direction="out").text
        == text
    )


def _answer(chat: Chat, text: str, replied: int | None) -> list[Any]:
    """Пользователь пишет текст — ответом Telegram (reply) на сообщение replied или просто так."""
    before = {m.message_id for m in chat.bot_messages()}
    chat.deliver(sandbox.sandbox_user_send_text(chat_id=chat.chat_id, text=text, reply_to_message_id=replied))
    return [m for m in chat.bot_messages() if m.message_id not in before]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_telegram_reply_to_a_staff_answer_goes_to_the_support_thread(
    bot_api: str, staff: User, language: str
) -> None:
    """Ответ на ответ поддержки — в ветку, как после /support, а не карточка генерации."""
    chat = Chat(bot_api, language)
    _ask_support(chat, "Where are my tokens?")
    [thanks_before] = [m for m in chat.bot_messages() if m.text == chat.expected("Thank you! Support will")]
    assert _reply(verified_client(staff), _thread(chat), {"text": "Which payment?"}) == ["Отправлено."]
    answer = chat.bot_messages()[-1]
    [thanks] = _answer(chat, "The one from yesterday", replied=answer.message_id)
    assert thanks.text == chat.expected("Thank you! Support will answer here as soon as possible.")
    assert ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, text="The one from yesterday").is_support
    assert _thread(chat).unread_count == 1
    # Ответ на другое сообщение бота и текст без ответа — запросы на картинку, как и раньше
    [card] = _answer(chat, "a small house", replied=thanks_before.message_id)
    assert "Nano Banana 2" in card.text
    [card] = _answer(chat, "a small boat", replied=None)
    assert "Nano Banana 2" in card.text
    assert not ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, text__startswith="a small").filter(
        is_support=True
    )
    assert _thread(chat).unread_count == 1


def test_an_album_replying_to_support_with_a_draft_open_is_thanked_once(bot_api: str, staff: User) -> None:
    """Черновик открыт, альбом ответом на ответ поддержки: оба фото — в ветку, «спасибо» — одно."""
    chat = Chat(bot_api, "en")
    _ask_support(chat, "Where are my tokens?")
    assert _reply(verified_client(staff), _thread(chat), {"text": "Send a screenshot"}) == ["Отправлено."]
    answer = chat.bot_messages()[-1]
    chat.say("a small house")  # открытый черновик генерации
    before = {m.message_id for m in chat.bot_messages()}
    updates = sandbox.sandbox_user_send_photos(
        chat_id=chat.chat_id,
        photos=[png(4, 3), png(5, 3)],
        caption="here",
        reply_to_message_id=answer.message_id,
    )
    for update in updates:
        chat.deliver(update)
    new = [m.text for m in chat.bot_messages() if m.message_id not in before]
    assert new == [chat.expected("Thank you! Support will answer here as soon as possible.")]
    photos = ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, direction="in", media_type="photo")
    assert [entry.is_support for entry in photos] == [True, True]


def test_a_photo_reply_goes_as_send_photo_and_the_proxy_serves_it(bot_api: str, staff: User) -> None:
    sandbox_chat = sandbox.sandbox_user_get_or_create(first_name="Pic")
    user = TelegramUser.objects.create(telegram_id=sandbox_chat.chat_id, first_name="Pic")
    thread = SupportThread.objects.create(user=user, last_activity_at=timezone.now())
    client = verified_client(staff)
    image = SimpleUploadedFile("shot.png", png(4, 3), content_type="image/png")
    nonce = form_nonce(client, f"/dashboard/support/{thread.pk}/")
    client.post(f"/dashboard/support/{thread.pk}/reply/", {"text": "Вот так", "photo": image, "nonce": nonce})
    [call] = sandbox.sandbox_calls(method="sendPhoto", chat_id=user.telegram_id)
    assert call.params.get("caption") == reply_framed(user=user, text="Вот так")
    assert sandbox.sandbox_messages(chat_id=user.telegram_id, direction="bot")[-1].caption == (
        "💬 Поддержка:\nВот так\n\nЧтобы ответить поддержке, ответьте на это сообщение."
    )
    [entry] = ChatLogEntry.objects.filter(user=user, direction="out")
    assert (entry.media_type, entry.staff_author_id) == ("photo", staff.pk)
    media = client.get(f"/dashboard/support/file/{entry.pk}/")
    assert media.status_code == 200
    assert media["Content-Type"].startswith("image/")
    assert len(media.content) > 0
    assert Client().get(f"/dashboard/support/file/{entry.pk}/").status_code == 302  # не персоналу — нет


def test_a_user_document_is_downloaded_not_rendered_and_a_jpeg_still_shows_inline(
    bot_api: str, staff: User
) -> None:
    """SVG от пользователя со скриптом в origin панели — скачивание без исполнения; JPEG — в браузере."""
    chat = Chat(bot_api, "en")
    svg = b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(document.cookie)</script></svg>'
    for name, content in [("evil.svg", svg), ("shot.jpg", b"\xff\xd8\xff\xe0" + b"0" * 32)]:
        update = sandbox.sandbox_user_send_document(chat_id=chat.chat_id, content=content, file_name=name)
        chat.deliver(update)
    svg_entry, jpg_entry = ChatLogEntry.objects.filter(
        user__telegram_id=chat.chat_id, direction="in", media_type="document"
    ).order_by("id")
    client = verified_client(staff)
    served = client.get(f"/dashboard/support/file/{svg_entry.pk}/")
    assert (served.status_code, served.content) == (200, svg)
    assert served["Content-Type"] == "application/octet-stream"
    assert served["Content-Disposition"].startswith("attachment;")
    assert served["Content-Security-Policy"] == "sandbox; default-src 'none'"
    assert served["X-Content-Type-Options"] == "nosniff"
    shown = client.get(f"/dashboard/support/file/{jpg_entry.pk}/")
    assert shown["Content-Type"] == "image/jpeg"
    assert shown["Content-Disposition"].startswith("inline;")
    assert shown["Content-Security-Policy"] == "sandbox; default-src 'none'"


def test_a_reply_to_a_user_who_blocked_the_bot_says_blocked(bot_api: str, staff: User) -> None:
    sandbox_chat = sandbox.sandbox_user_get_or_create(first_name="Gone")
    user = TelegramUser.objects.create(telegram_id=sandbox_chat.chat_id, first_name="Gone")
    sandbox.sandbox_inject_failure(method="sendMessage", failure="blocked", chat_id=sandbox_chat.chat_id)
    client = verified_client(staff)
    form = {"text": "hello", "nonce": form_nonce(client, f"/dashboard/users/{user.pk}/")}
    response = client.post(f"/dashboard/users/{user.pk}/message/", form, follow=True)
    assert any("blocked" in m for m in _messages(response))
    assert TelegramUser.objects.get(pk=user.pk).is_blocked


def _sandbox_thread(first_name: str) -> SupportThread:
    """Ветка пользователя песочницы, которому бот ещё ничего не слал (лимит чата свободен)."""
    sandbox_chat = sandbox.sandbox_user_get_or_create(first_name=first_name)
    user = TelegramUser.objects.create(telegram_id=sandbox_chat.chat_id, first_name=first_name)
    return SupportThread.objects.create(user=user, last_activity_at=timezone.now())


def _sent_texts(user: TelegramUser) -> list[str]:
    return [
        c.params.get("text") for c in sandbox.sandbox_calls(method="sendMessage", chat_id=user.telegram_id)
    ]


def test_the_same_reply_form_sent_twice_reaches_the_user_once(bot_api: str, staff: User) -> None:
    """Двойной клик по «Отправить»: один nonce — одно сообщение пользователю."""
    thread = _sandbox_thread("Twice")
    client = verified_client(staff)
    form = {
        "text": "Проверили, всё в порядке",
        "nonce": form_nonce(client, f"/dashboard/support/{thread.pk}/"),
    }
    first = client.post(f"/dashboard/support/{thread.pk}/reply/", form, follow=True)
    second = client.post(f"/dashboard/support/{thread.pk}/reply/", form, follow=True)
    assert _sent_texts(thread.user) == [reply_framed(user=thread.user, text="Проверили, всё в порядке")]
    assert _messages(first) == ["Отправлено."]
    assert any("уже была отправлена" in m for m in _messages(second))
    assert StaffAuditLog.objects.filter(action="support.reply", actor=staff).count() == 1


def test_a_refused_message_keeps_its_text_and_the_same_form_can_send_it_again(
    bot_api: str, staff: User
) -> None:
    """Telegram отказал — сообщение точно не ушло: текст возвращается в форму, повтор формы отправляет."""
    user = _sandbox_thread("Refused").user
    sandbox.sandbox_inject_failure(method="sendMessage", failure="chat_not_found", chat_id=user.telegram_id)
    client = verified_client(staff)
    form = {"text": "Ваш промокод: SPRING", "nonce": form_nonce(client, f"/dashboard/users/{user.pk}/")}
    refused = client.post(f"/dashboard/users/{user.pk}/message/", form, follow=True)
    assert any(m.startswith("Telegram отказал") for m in _messages(refused))
    assert "Ваш промокод: SPRING</textarea>" in refused.content.decode()
    again = client.post(f"/dashboard/users/{user.pk}/message/", form, follow=True)
    assert _messages(again) == ["Отправлено."]
    framed = reply_framed(user=user, text="Ваш промокод: SPRING")
    assert _sent_texts(user) == [framed, framed]  # отказ и доставка
    assert "Ваш промокод: SPRING</textarea>" not in again.content.decode()


def test_a_network_failure_says_the_outcome_is_unknown_keeps_the_text_and_does_not_resend(
    bot_api: str, staff: User
) -> None:
    """502 / таймаут: сообщение могло дойти — «исход неизвестен», текст в форме, та же форма не шлёт снова."""
    thread = _sandbox_thread("Unknown")
    sandbox.sandbox_inject_failure(
        method="sendMessage", failure="server_error", chat_id=thread.user.telegram_id
    )
    client = verified_client(staff)
    form = {"text": "Деньги вернули", "nonce": form_nonce(client, f"/dashboard/support/{thread.pk}/")}
    response = client.post(f"/dashboard/support/{thread.pk}/reply/", form, follow=True)
    [note] = _messages(response)
    assert note.startswith("Исход неизвестен")
    assert "проверьте переписку" in note
    assert "Telegram отказал" not in note
    assert ">Деньги вернули</textarea>" in response.content.decode()
    again = client.post(f"/dashboard/support/{thread.pk}/reply/", form, follow=True)
    assert any("уже была отправлена" in m for m in _messages(again))
    assert _sent_texts(thread.user) == [
        reply_framed(user=thread.user, text="Деньги вернули")
    ]  # тот, что упал


def test_read_and_resolve_are_audited(staff: User) -> None:
    user = TelegramUser.objects.create(telegram_id=9_100_003, first_name="Done")
    thread = SupportThread.objects.create(user=user, unread_count=2, last_activity_at=timezone.now())
    client = verified_client(staff)
    client.post(f"/dashboard/support/{thread.pk}/read/")
    assert SupportThread.objects.get(pk=thread.pk).unread_count == 0
    client.post(f"/dashboard/support/{thread.pk}/resolve/", {"resolved": "1"})
    thread.refresh_from_db()
    assert (thread.status, thread.resolved_by_id) == (SupportThread.Status.RESOLVED, staff.pk)
    client.post(f"/dashboard/support/{thread.pk}/resolve/", {"resolved": "0"})
    actions = list(StaffAuditLog.objects.filter(actor=staff).order_by("id").values_list("action", flat=True))
    assert actions == ["support.read", "support.resolve", "support.reopen"]


def test_staff_link_their_telegram_and_a_burst_of_messages_is_one_alert(bot_api: str, staff: User) -> None:
    client = verified_client(staff)
    page = client.post("/dashboard/support/link/").content.decode()
    match = re.search(r'href="https://t\.me/(\w+)\?start=staff_([0-9a-f]+)"', page)
    assert match, page
    staff_chat = Chat(bot_api, "en")
    [confirmation] = staff_chat.say(f"/start staff_{match.group(2)}")
    assert "linked" in confirmation.text
    profile = StaffProfile.objects.get(user=staff)
    assert (profile.telegram_id, profile.link_code) == (staff_chat.chat_id, "")
    assert StaffAuditLog.objects.filter(action="staff.link_telegram", actor=staff).exists()
    # Тот же код второй раз уже не действует
    [again] = staff_chat.say(f"/start staff_{match.group(2)}")
    assert "invalid or has expired" in again.text

    user_chat = Chat(bot_api, "ru")
    _ask_support(user_chat, "Не пришла картинка")
    _ask_support(user_chat, "И вторая тоже")
    alerts = [m for m in staff_chat.bot_messages() if "Не пришла картинка" in (m.text or "")]
    assert len(alerts) == 1
    assert not [m for m in staff_chat.bot_messages() if "И вторая тоже" in (m.text or "")]
    assert _thread(user_chat).unread_count == 2


def test_an_expired_link_code_does_not_link(sandbox_mode_server: str, staff: User) -> None:  # noqa: F811
    StaffProfile.objects.create(
        user=staff, link_code="deadbeef", link_code_expires_at=timezone.now() - timedelta(minutes=1)
    )
    chat = Chat(sandbox_mode_server, "en")
    [reply] = chat.say("/start staff_deadbeef")
    assert "invalid or has expired" in reply.text
    assert StaffProfile.objects.get(user=staff).telegram_id is None
