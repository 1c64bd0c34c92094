"""Веб-чат песочницы в настоящем браузере (Debian chromium + chromedriver, без скачивания браузера)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from typing import Any

import pytest

from botapp.sandbox.models import SandboxChat
from botapp.tests.support import dblock

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

# Debian-пакеты по умолчанию; на раннерах GitHub — предустановленные Chrome и chromedriver (см. ci.yml)
CHROMIUM = os.environ.get("CHROMIUM_BIN", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("CHROMEDRIVER_BIN", "/usr/bin/chromedriver")


@pytest.fixture
def browser(tmp_path: Any) -> Iterator[Any]:
    if not (shutil.which(CHROMIUM) and shutil.which(CHROMEDRIVER)):
        pytest.fail("Debian chromium and chromium-driver are required (make test installs them)")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    flags = [
        "--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
        "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run",
        f"--user-data-dir={tmp_path / 'profile'}", "--window-size=390,844",  # экран телефона
    ]  # fmt: skip
    for flag in flags:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


def test_the_web_chat_talks_to_the_bot(browser: Any, sandbox_bot_api: str) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from botapp.telegram import commands, outbound

    # Сервер песочницы общий для сессии: команды он опубликовал при старте, а очистка базы между тестами
    # их стёрла — публикуем снова, как при старте
    outbound.bot_call(commands.publish_commands)
    sandbox_mode_server = sandbox_bot_api
    wait = WebDriverWait(browser, 30)
    browser.get(f"{sandbox_mode_server}/sandbox/")

    # Нет пользователей — страница сама предлагает создать
    dialog = wait.until(ec.visibility_of_element_located((By.ID, "userDialog")))
    name = dialog.find_element(By.NAME, "first_name")
    name.clear()
    name.send_keys("Браузер")
    Select(dialog.find_element(By.NAME, "language_code")).select_by_value("ru")
    dialog.find_element(By.CSS_SELECTOR, "button[value=ok]").click()

    text = wait.until(ec.element_to_be_clickable((By.ID, "text")))
    text.send_keys("/start")
    browser.find_element(By.ID, "sendBtn").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Привет, Браузер!"))

    # Подсказка команд по «/» и reply-клавиатура — не выше трети экрана телефона: поле ввода остаётся видно
    text.send_keys("/")
    wait.until(lambda driver: len(driver.find_elements(By.CSS_SELECTOR, "#cmds div")) >= 10)
    box = browser.execute_script(
        "const [c, k] = [document.getElementById('cmds'), document.getElementById('replykb')];"
        "return {cmds: c.clientHeight, listed: c.scrollHeight, keyboard: k.clientHeight, screen: innerHeight,"
        "input: document.getElementById('text').getBoundingClientRect().bottom};"
    )
    assert box["listed"] > box["cmds"] <= box["screen"] * 0.35 + 1, box
    assert 0 < box["keyboard"] <= box["screen"] * 0.35 + 1, box
    assert box["input"] <= box["screen"], box
    text.send_keys(Keys.BACKSPACE)
    wait.until(lambda driver: not driver.find_elements(By.CSS_SELECTOR, "#cmds div"))

    # Кнопка главного меню (reply-клавиатура) → карточка настроек
    settings_button = wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "#replykb button[data-text='⚙️ Настройки']"))
    )
    settings_button.click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Настройки. Выберите язык"))

    # Inline-кнопка настроек: язык → English; карточка правится на месте, меню приходит заново
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[data-cb='set:lang:en']"))).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Language switched to English."))
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Settings. Choose the language"))
    wait.until(ec.presence_of_element_located((By.CSS_SELECTOR, "#replykb button[data-text='⚙️ Settings']")))
    assert "Настройки. Выберите язык" not in browser.find_element(By.ID, "log").text

    # 🚫 в шапке: пользователь блокирует бота — писать нельзя, пока не разблокирует (🔓)
    browser.find_element(By.ID, "blockBtn").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "status"), "вы заблокировали бота"))
    assert not browser.find_element(By.ID, "text").is_enabled()
    wait.until(ec.element_to_be_clickable((By.ID, "blockBtn"))).click()
    wait.until(ec.element_to_be_clickable((By.ID, "text")))
    assert browser.find_element(By.ID, "blockBtn").get_attribute("aria-pressed") == "false"


def test_buying_a_package_with_pay_stars_shows_the_new_balance(
    browser: Any, sandbox_mode_server: str
) -> None:
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import Select, WebDriverWait

    from botapp.models import TokenPackage

    package = TokenPackage.objects.get(stars=50)
    wait = WebDriverWait(browser, 30)
    browser.get(f"{sandbox_mode_server}/sandbox/")
    dialog = wait.until(ec.visibility_of_element_located((By.ID, "userDialog")))
    dialog.find_element(By.NAME, "first_name").send_keys("Buyer")
    Select(dialog.find_element(By.NAME, "language_code")).select_by_value("en")
    # Пользователь создаётся долго (таблица чатов занята): писать, пока его нет, некуда — поле закрыто.
    # Раньше набранное в этот момент молча пропадало (нестабильный тест под нагрузкой)
    with dblock.holding(f"LOCK TABLE {SandboxChat._meta.db_table} IN SHARE MODE"):
        dialog.find_element(By.CSS_SELECTOR, "button[value=ok]").click()
        wait.until(lambda _: dblock.awaited())
        assert not browser.find_element(By.ID, "text").is_enabled()
    text = wait.until(ec.element_to_be_clickable((By.ID, "text")))
    text.send_keys("/start")
    browser.find_element(By.ID, "sendBtn").click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Welcome bonus"))
    # ⭐ Top up в меню → пакет → счёт → «Оплатить ⭐»
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, "#replykb button[data-text='⭐ Top up']"))
    ).click()
    wait.until(
        ec.element_to_be_clickable((By.CSS_SELECTOR, f"button[data-cb='top:stars:{package.pk}']"))
    ).click()
    wait.until(ec.element_to_be_clickable((By.CSS_SELECTOR, "button[data-pay]"))).click()
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Payment received: +50 tokens."))
    wait.until(ec.text_to_be_present_in_element((By.ID, "log"), "Balance: 70 tokens."))
