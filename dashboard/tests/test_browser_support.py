"""Поддержка в настоящем браузере: вход с кодом TOTP, ветка, ответ — доходит до эмулятора Bot API."""

from __future__ import annotations

import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from botapp.models import ChatLogEntry
from botapp.sandbox import services as sandbox
from botapp.tests.sandbox.conftest import (
    _fresh_rate_limits,  # noqa: F401 — общая фикстура
    sandbox_mode_server,  # noqa: F401 — общая фикстура
)
from botapp.tests.sandbox.test_browser import browser  # noqa: F401 — общая фикстура
from botapp.tests.telegram.conftest import _server_sees_test_data  # noqa: F401
from botapp.tests.telegram.test_chat_paths import Chat
from dashboard.models import SupportThread

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

REPLY = "Платёж нашли, токены уже на балансе"


def test_staff_log_in_with_totp_open_the_thread_and_the_reply_reaches_the_user(
    browser: Any,  # noqa: F811
    sandbox_mode_server: str,  # noqa: F811
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    staff = User.objects.create_user(
        "olga",
        password="correct horse",
        is_staff=True,  # pragma: allowlist secret
    )  # pragma: allowlist secret
    device = TOTPDevice.objects.create(user=staff, name="phone", confirmed=True)
    chat = Chat(sandbox_mode_server, "ru")
    chat.say("/support")
    chat.say("Оплатил, а токенов нет")
    thread = SupportThread.objects.get(user__telegram_id=chat.chat_id)

    wait = WebDriverWait(browser, 30)
    browser.get(f"{sandbox_mode_server}/dashboard/support/")
    wait.until(ec.url_contains("/dashboard/login/"))
    browser.find_element(By.NAME, "username").send_keys("olga")
    browser.find_element(By.NAME, "password").send_keys("correct horse")
    code = totp(device.bin_key, device.step, device.t0, device.digits, device.drift)
    browser.find_element(By.NAME, "otp_token").send_keys(f"{code:06d}")
    browser.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()

    # После входа — обратно во входящие; ветка с непрочитанным
    link = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"a[href='/dashboard/support/{thread.pk}/']"))
    )
    assert browser.find_element(By.CSS_SELECTOR, ".unread").text == "1"
    link.click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".dialog"), "Оплатил, а токенов нет"))
    for _attempt in range(5):
        box = wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "#reply textarea[name=text]")))
        box.send_keys(REPLY)
        browser.find_element(By.CSS_SELECTOR, "#reply button[type=submit]").click()
        notice = wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, ".messages li")))
        if notice.text == "Отправлено.":
            break
        # Лимит чата общий с ботом, который только что ответил пользователю: сотрудник пробует ещё раз
        assert notice.text.startswith("Лимит Telegram"), notice.text
        time.sleep(1.2)
    else:
        pytest.fail("the reply was never sent")

    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".dialog"), REPLY))
    sent = [c.params.get("text") for c in sandbox.sandbox_calls(method="sendMessage", chat_id=chat.chat_id)]
    # Пользователю — с подписью «💬 Поддержка:» и подсказкой, как ответить
    assert any(text.startswith("<b>💬 Поддержка:</b>\n" + REPLY) for text in sent)
    [entry] = ChatLogEntry.objects.filter(user__telegram_id=chat.chat_id, text=REPLY)
    assert (entry.is_support, entry.staff_author_id) == (True, staff.pk)
