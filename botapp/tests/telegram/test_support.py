"""Поддержка в чате: оповещение сотрудника и обращение альбомом — через вебхук и эмулятор Bot API."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model

from botapp.models import ChatLogEntry
from botapp.sandbox import services
from botapp.tests.telegram.test_chat_paths import Chat

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

SECRET = "my card 4111 and my address Baker St 221b"


def _staff(base: str) -> Chat:
    """Сотрудник панели, привязавший свой Telegram (оповещения о новых обращениях включены)."""
    from dashboard.models import StaffProfile

    staff = Chat(base, "ru")
    staff.say("/start")
    agent = get_user_model().objects.create_user(username="agent", password="x", is_staff=True)
    StaffProfile.objects.create(user=agent, telegram_id=staff.chat_id, notify_support=True)
    return staff


def test_the_staff_alert_carries_no_customer_text_and_delete_me_leaves_no_copy(
    sandbox_mode_server: str,
) -> None:
    """Оповещение пишется в журнал переписки сотрудника: текста клиента там быть не должно."""
    from dashboard.models import SupportThread

    staff = _staff(sandbox_mode_server)
    customer = Chat(sandbox_mode_server, "en")
    customer.say("/support")
    customer.say(SECRET)
    thread = SupportThread.objects.get(user__telegram_id=customer.chat_id)
    [alert] = [m for m in staff.bot_messages() if m.text.startswith("🆘")]
    assert alert.text.startswith(staff.expected("🆘 New support message, thread").format(thread=thread.pk))
    assert "4111" not in alert.text
    [question] = customer.say("/delete_me")
    customer.press(question, "del:yes")
    assert not ChatLogEntry.objects.filter(text__contains="4111").exists()
    assert not [c for c in services.sandbox_calls(chat_id=staff.chat_id) if "4111" in str(c.params)]
