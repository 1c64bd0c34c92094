"""Обзор в настоящем браузере: вход по паролю и коду TOTP, числа засеянных данных на экране телефона."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import User
from django.utils import timezone
from django_otp.oath import totp
from django_otp.plugins.otp_totp.models import TOTPDevice

from botapp.tests.sandbox.test_browser import browser  # noqa: F401 — общая фикстура браузера
from dashboard.tests.test_overview import seed_overview

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def test_staff_log_in_with_totp_and_see_the_weeks_numbers_on_a_phone(
    browser: Any,  # noqa: F811
    live_server: Any,
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    seed_overview(timezone.now())
    user = User.objects.create_user("olga", password="long password 1", is_staff=True)
    device = TOTPDevice.objects.create(user=user, name="phone", confirmed=True)
    code = f"{totp(device.bin_key, device.step, device.t0, device.digits, device.drift):06d}"

    wait = WebDriverWait(browser, 30)
    browser.get(f"{live_server.url}/dashboard/")
    wait.until(ec.url_contains("/dashboard/login/"))
    browser.find_element(By.NAME, "username").send_keys("olga")
    browser.find_element(By.NAME, "password").send_keys("long password 1")
    browser.find_element(By.NAME, "otp_token").send_keys(code)
    browser.find_element(By.CSS_SELECTOR, "main button[type=submit]").click()

    kpi = wait.until(ec.visibility_of_element_located((By.CSS_SELECTOR, "[data-kpi=jobs]")))
    assert kpi.text == "9"
    assert browser.find_element(By.CSS_SELECTOR, "[data-kpi=new_users]").text == "2"
    assert browser.find_element(By.CSS_SELECTOR, "[data-kpi=active_users]").text == "4"
    assert browser.find_element(By.CSS_SELECTOR, "[data-kpi=success_rate]").text == "67%"
    assert browser.find_element(By.CSS_SELECTOR, "[data-kpi=revenue_usd]").text == "$6,30"
    assert len(browser.find_elements(By.CSS_SELECTOR, "svg.chart")) == 5
    # Ничего не вылезает за экран телефона: широкие таблицы прокручиваются внутри своих блоков
    assert browser.execute_script("return document.documentElement.scrollWidth <= window.innerWidth")

    browser.find_element(By.LINK_TEXT, "30 дней").click()
    wait.until(ec.text_to_be_present_in_element((By.CSS_SELECTOR, "[data-kpi=jobs]"), "10"))
    assert "199,00" in browser.find_element(By.ID, "revenue").get_attribute("textContent")
