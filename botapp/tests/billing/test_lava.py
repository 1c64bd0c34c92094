"""Оплата картой через lava.top: счёт, вебхук, зачисление ровно один раз — настоящие HTTP-серверы.

lava — локальная подделка по вендорной спецификации (tests/support/fake_lava.py), вебхук —
через uvicorn с ASGI-приложением проекта, как его вызывает lava.
"""

from __future__ import annotations

import base64
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import override_settings
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from botapp.billing import lava
from botapp.models import Invoice, LedgerTransaction, Payment, PaymentMethod, TelegramUser, TokenPackage
from botapp.providers.base import ProviderPermanentError, ProviderTransientError
from botapp.providers.payments import lava as lava_api
from botapp.tasks import billing as billing_tasks
from botapp.telegram.formatting import tokens
from botapp.tests.billing.factories import balance, package_make, user_make
from botapp.tests.support import processes
from botapp.tests.support.fake_lava import FakeLava
from botapp.tests.support.parallel import run_in_processes
from botapp.tests.telegram.test_chat_paths import Chat, _inline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]

API_KEY = "lava-api-key-for-tests"  # pragma: allowlist secret
WEBHOOK_KEY = "lava-webhook-key-for-tests"  # pragma: allowlist secret
WEBHOOK_USER, WEBHOOK_PASSWORD = "lava", "basic-password-for-tests"  # pragma: allowlist secret
WEBHOOK_PATH = "/payments/lava/webhook/"


# --- серверы ---


@pytest.fixture(scope="module")
def fake() -> Iterator[FakeLava]:
    with FakeLava(api_key=API_KEY) as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh(fake: FakeLava, request: pytest.FixtureRequest) -> Iterator[None]:
    """Чистый журнал подделки, lava «работает»; счета журнала — как после миграции."""
    fake.requests.clear()
    fake.outage = fake.barrier = None
    request.getfixturevalue("transactional_db")
    yield
    assert fake.violations == [], f"requests that do not match lava's spec: {fake.violations}"


def _server(logs_dir: Path, name: str, fake: FakeLava, **extra: str) -> Iterator[str]:
    port = processes.free_port()
    env = processes.django_env(
        TELEGRAM_SANDBOX="true",
        PORT=str(port),
        TELEGRAM_RATE_OVERALL="1000",
        TELEGRAM_RATE_PER_CHAT="1000",
        LAVA_ENABLED="true",
        LAVA_API_BASE_URL=fake.base_url,
        LAVA_API_KEY=API_KEY,
        **extra,
    )
    with processes.web_server(env, logs_dir / f"{name}.log", port=port) as base:
        yield base


@pytest.fixture(scope="module")
def server(django_db_setup: Any, django_db_blocker: Any, logs_dir: Path, fake: FakeLava) -> Iterator[str]:
    """Вебхук по ключу в X-Api-Key; песочница Telegram на том же порту."""
    with django_db_blocker.unblock():
        yield from _server(logs_dir, "lava-key", fake, LAVA_WEBHOOK_API_KEY=WEBHOOK_KEY)


@pytest.fixture(scope="module")
def basic_server(
    django_db_setup: Any, django_db_blocker: Any, logs_dir: Path, fake: FakeLava
) -> Iterator[str]:
    with django_db_blocker.unblock():
        yield from _server(
            logs_dir,
            "lava-basic",
            fake,
            LAVA_WEBHOOK_USER=WEBHOOK_USER,
            LAVA_WEBHOOK_PASSWORD=WEBHOOK_PASSWORD,
        )


@pytest.fixture(scope="module")
def closed_server(
    django_db_setup: Any, django_db_blocker: Any, logs_dir: Path, fake: FakeLava
) -> Iterator[str]:
    """lava включена, но учётные данные вебхука не заданы."""
    with django_db_blocker.unblock():
        yield from _server(logs_dir, "lava-closed", fake)


# --- помощники ---


def _package(fake: FakeLava, *, price: str = "199.00", tokens: int = 300) -> TokenPackage:
    package = package_make(stars=250, tokens=tokens, order=9)
    package.lava_offers = {"RUB": fake.offer_add({"RUB": float(price)})}
    package.lava_prices = {"RUB": price}
    package.save()
    return package


def _lava_settings(fake: FakeLava) -> Any:
    return override_settings(LAVA_ENABLED=True, LAVA_API_BASE_URL=fake.base_url, LAVA_API_KEY=API_KEY)


def _invoice(fake: FakeLava, user: TelegramUser | None = None, **package: Any) -> Invoice:
    user = user or user_make()
    TelegramUser.objects.filter(pk=user.pk).update(lava_email="buyer@example.com")
    user.refresh_from_db()
    with _lava_settings(fake):
        return lava.lava_invoice_create(user=user, package_id=_package(fake, **package).pk, currency="RUB")


def _chat_user(server: str, language: str) -> tuple[Chat, TelegramUser]:
    """Покупатель, написавший боту /start: чек приходит в его чат."""
    chat = Chat(server, language)
    chat.say("/start")
    return chat, TelegramUser.objects.get(telegram_id=chat.chat_id)


def _post(base: str, payload: Any, *, key: str | None = WEBHOOK_KEY, **headers: str) -> httpx.Response:
    if key is not None:
        headers["X-Api-Key"] = key
    if isinstance(payload, bytes):
        return httpx.post(base + WEBHOOK_PATH, content=payload, headers=headers, timeout=30)
    return httpx.post(base + WEBHOOK_PATH, json=payload, headers=headers, timeout=30)


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _credited_nothing(user: TelegramUser) -> None:
    assert not Payment.objects.exists()
    assert not LedgerTransaction.objects.filter(user=user).exists()
    assert balance(user) == (0, 0)


# --- где предлагается ---


def test_lava_is_offered_only_when_enabled_and_the_package_has_an_offer() -> None:
    user = TelegramUser(telegram_id=1)
    offered = TokenPackage(stars=1, tokens=1, lava_offers={"RUB": "o"}, lava_prices={"RUB": "199.00"})
    no_offer = TokenPackage(stars=1, tokens=1, lava_prices={"RUB": "199.00"})
    no_price = TokenPackage(stars=1, tokens=1, lava_offers={"RUB": "o"}, lava_prices={"RUB": "free"})
    with override_settings(LAVA_ENABLED=False):
        assert not lava.lava_offered(user)
        assert not lava.lava_offered(user, offered, "RUB")
    with override_settings(LAVA_ENABLED=True):
        assert lava.lava_offered(user)
        assert lava.lava_offered(user, offered)
        assert lava.lava_offered(user, offered, "RUB")
        assert not lava.lava_offered(user, offered, "USD")
        assert not lava.lava_offered(user, no_offer)
        assert not lava.lava_offered(user, no_price, "RUB")
        assert not lava.lava_offered(TelegramUser(telegram_id=2, is_banned=True), offered, "RUB")
        assert not lava.lava_offered(user, TokenPackage(stars=1, tokens=1, is_enabled=False, **_offers()))


def _offers() -> dict[str, Any]:
    return {"lava_offers": {"RUB": "o"}, "lava_prices": {"RUB": "199.00"}}


# --- счёт ---


def test_creating_an_invoice_sends_a_spec_valid_request_and_stores_our_invoice(fake: FakeLava) -> None:
    user = user_make(language="ru")
    invoice = _invoice(fake, user, price="249.50", tokens=500)
    [call] = fake.calls("POST", "/api/v2/invoice")
    package = invoice.package
    assert call.headers["x-api-key"] == API_KEY
    assert call.json_body == {
        "email": "buyer@example.com",
        "offerId": package.lava_offers["RUB"],
        "currency": "RUB",
        "periodicity": "ONE_TIME",
        "buyerLanguage": "RU",
    }
    assert call.status == 201
    [contract_id] = fake.contracts
    stored = Invoice.objects.get()
    assert (stored.method, stored.external_id, stored.user) == (PaymentMethod.LAVA, contract_id, user)
    assert stored.payment_url == f"https://app.lava.top/fake-checkout/{contract_id}"
    assert (stored.amount, stored.currency, stored.tokens) == (Decimal("249.50"), "RUB", 500)
    assert stored.status == Invoice.Status.OPEN


def test_no_invoice_is_stored_when_lava_refuses_or_is_down(fake: FakeLava) -> None:
    user = user_make()
    package = _package(fake)
    TelegramUser.objects.filter(pk=user.pk).update(lava_email="buyer@example.com")
    user.refresh_from_db()
    with _lava_settings(fake):
        package.lava_offers = {"RUB": str(uuid.uuid4())}  # оффера у lava нет → 404
        package.save()
        with pytest.raises(ProviderPermanentError):
            lava.lava_invoice_create(user=user, package_id=package.pk, currency="RUB")
        fake.outage = 503
        with pytest.raises(ProviderTransientError):
            lava.lava_invoice_create(user=user, package_id=package.pk, currency="RUB")
        fake.outage = "reset"
        with pytest.raises(ProviderTransientError):
            lava.lava_invoice_create(user=user, package_id=package.pk, currency="RUB")
        # lava зависла: клиент уходит по своему таймауту, это временный сбой, а не отказ
        fake.outage, fake.hang_s = "hang", 1.5
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(lava_api, "TIMEOUT_S", 0.3)
            with pytest.raises(ProviderTransientError, match="ReadTimeout"):
                lava.lava_invoice_create(user=user, package_id=package.pk, currency="RUB")
        fake.outage = None
        with pytest.raises(lava.LavaNotOffered):
            lava.lava_invoice_create(user=user, package_id=package.pk, currency="USD")
    with pytest.raises(lava.LavaNotOffered):
        lava.lava_invoice_create(user=user, package_id=package.pk, currency="RUB")  # LAVA_ENABLED=false
    assert not Invoice.objects.exists()


def test_the_chat_asks_for_the_email_once_sends_a_payment_link_and_a_receipt(
    fake: FakeLava, server: str
) -> None:
    package = _package(fake)
    chat = Chat(server, "en")
    chat.say("/start")
    [menu] = chat.say("/topup")
    assert f"lava:{package.pk}:RUB" in [b.get("callback_data") for b in _inline(menu)]

    chat.press(menu, f"lava:{package.pk}:RUB")
    assert chat.bot_messages()[-1].text.startswith("To pay by card, send your e-mail")
    assert fake.calls() == []
    [refusal] = chat.say("not an e-mail")
    assert refusal.text.startswith("This does not look like an e-mail")
    [link] = chat.say("ann@example.com")
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    assert user.lava_email == "ann@example.com"
    invoice = Invoice.objects.get(method=PaymentMethod.LAVA)
    [button] = _inline(link)
    assert button["url"] == invoice.payment_url
    assert fake.calls("POST")[0].json_body["email"] == "ann@example.com"

    # Второй раз e-mail не спрашивают: сразу ссылка на новый счёт
    chat.press(menu, f"lava:{package.pk}:RUB")
    assert _inline(chat.bot_messages()[-1])[0]["url"] != invoice.payment_url
    assert len(fake.calls("POST")) == 2

    fake.pay(invoice.external_id)
    assert _post(server, fake.webhook_payload(invoice.external_id)).status_code == 200
    assert balance(user) == (20 + package.total_tokens, 0)
    with translation.override("en"):
        receipt = _("✅ Payment received: +{tokens}.\nBalance: {available}.")
    assert chat.bot_messages()[-1].text == receipt.format(
        tokens=f"{package.total_tokens} tokens", available=f"{20 + package.total_tokens} tokens"
    )


# --- вебхук ---


def test_forged_webhooks_are_refused_and_credit_nothing(
    fake: FakeLava, server: str, basic_server: str, closed_server: str
) -> None:
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    payload = fake.webhook_payload(invoice.external_id)
    assert _post(server, payload, key="not-the-key").status_code == 401
    assert _post(server, payload, key=None).status_code == 401
    assert (
        _post(server, payload, key=None, Authorization=_basic(WEBHOOK_USER, WEBHOOK_PASSWORD)).status_code
        == 401
    )
    refused = _post(basic_server, payload, key=None, Authorization=_basic(WEBHOOK_USER, "wrong"))
    assert refused.status_code == 401
    assert refused.headers["WWW-Authenticate"].startswith("Basic")
    assert _post(basic_server, payload, key=None, Authorization="Basic !!!").status_code == 401
    assert _post(basic_server, payload, key=WEBHOOK_KEY).status_code == 401
    assert _post(closed_server, payload, key=WEBHOOK_KEY).status_code == 403
    assert (
        _post(closed_server, payload, Authorization=_basic(WEBHOOK_USER, WEBHOOK_PASSWORD)).status_code == 403
    )
    _credited_nothing(invoice.user)
    assert fake.calls("GET") == []


def test_basic_auth_webhook_is_accepted_with_the_right_credentials(fake: FakeLava, basic_server: str) -> None:
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    response = _post(
        basic_server,
        fake.webhook_payload(invoice.external_id),
        key=None,
        Authorization=_basic(WEBHOOK_USER, WEBHOOK_PASSWORD),
    )
    assert response.status_code == 200
    assert balance(invoice.user) == (invoice.tokens, 0)


def test_a_success_webhook_lava_does_not_confirm_yet_is_retried_and_a_declined_one_credits_nothing(
    fake: FakeLava, server: str
) -> None:
    invoice = _invoice(fake)
    # Вебхук утверждает «оплачено», lava ещё видит NEW: не зачисляем, но и не глотаем — 503, lava повторит
    assert _post(server, fake.webhook_payload(invoice.external_id)).status_code == 503
    [check] = fake.calls("GET")
    assert check.path == f"/api/v2/invoices/{invoice.external_id}"
    assert check.headers["x-api-key"] == API_KEY
    _credited_nothing(invoice.user)
    # Оплата не прошла: lava говорит FAILED — вебхук доставлен, счёт закрыт, ничего не зачислено
    fake.decline(invoice.external_id)
    assert _post(server, fake.webhook_payload(invoice.external_id)).status_code == 200
    _credited_nothing(invoice.user)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.FAILED


def test_a_failed_payment_event_changes_nothing(fake: FakeLava, server: str) -> None:
    invoice = _invoice(fake)
    fake.decline(invoice.external_id)
    assert _post(server, fake.webhook_payload(invoice.external_id, "payment.failed")).status_code == 200
    _credited_nothing(invoice.user)


def test_a_completed_invoice_is_credited_exactly_once_however_often_the_webhook_comes(
    fake: FakeLava, server: str
) -> None:
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    payload = fake.webhook_payload(invoice.external_id)
    # Все три копии перечитывают контракт одновременно и одновременно пытаются зачислить
    fake.hold_until_concurrent(3)
    with ThreadPoolExecutor(3) as pool:
        statuses = list(pool.map(lambda _: _post(server, payload).status_code, range(3)))
    fake.barrier = None
    assert len(fake.calls("GET")) == 3
    statuses += [_post(server, payload).status_code for _ in range(3)]
    assert statuses == [200] * 6
    [payment] = Payment.objects.all()
    assert (payment.method, payment.external_id, payment.invoice) == (
        PaymentMethod.LAVA,
        invoice.external_id,
        invoice,
    )
    assert payment.tokens == invoice.tokens
    [credit] = LedgerTransaction.objects.filter(user=invoice.user)
    assert credit.idempotency_key == f"pay:lava:{invoice.external_id}"
    assert balance(invoice.user) == (invoice.tokens, 0)
    invoice.refresh_from_db()
    assert invoice.status == Invoice.Status.PAID


def test_four_processes_settling_the_same_paid_invoice_credit_it_once(fake: FakeLava) -> None:
    """Повторы вебхука в разных веб-процессах: зачисление одно — решает UNIQUE платежа, а не удача."""
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    payload = fake.webhook_payload(invoice.external_id)
    env = {"LAVA_ENABLED": "true", "LAVA_API_BASE_URL": fake.base_url, "LAVA_API_KEY": API_KEY}
    actions = run_in_processes(
        "botapp.tests.billing.parallel_targets:lava_settle",
        [{"invoice_id": invoice.pk, "payload": payload}] * 4,
        env=env,
    )
    assert sorted(actions) == ["credited"] + ["duplicate"] * 3
    assert Payment.objects.count() == 1
    assert balance(invoice.user) == (invoice.tokens, 0)


def test_the_amount_and_currency_come_from_lavas_receipt_not_the_webhook(fake: FakeLava, server: str) -> None:
    invoice = _invoice(fake, price="990.00", tokens=2000)
    fake.pay(invoice.external_id)
    cheap = fake.webhook_payload(invoice.external_id, amount=1, currency="USD")
    assert _post(server, cheap).status_code == 200
    payment = Payment.objects.get()
    assert (payment.amount, payment.currency, payment.tokens) == (Decimal("990.00"), "RUB", 2000)
    assert payment.note == ""
    assert balance(invoice.user) == (2000, 0)


def test_a_receipt_below_the_invoice_is_recorded_for_staff_not_credited(fake: FakeLava, server: str) -> None:
    """Оператор снизил цену оффера в кабинете lava, не поправив пакет: полный пакет за полцены не выдаём."""
    chat, user = _chat_user(server, "en")
    invoice = _invoice(fake, user, price="199.00", tokens=300)
    fake.pay(invoice.external_id, amount=99.0)

    assert _post(server, fake.webhook_payload(invoice.external_id, amount=199.0)).status_code == 200

    payment = Payment.objects.get()
    assert (payment.amount, payment.currency, payment.tokens) == (Decimal("99"), "RUB", 0)
    assert payment.note.startswith("unmatched")
    assert balance(user) == (20, 0)
    with translation.override("en"):
        expected = _("Payment received, but we could not match it to an invoice. Support will sort it out.")
    assert chat.bot_messages()[-1].text == expected
    # Повтор вебхука — уже записанный платёж, второго сообщения нет
    messages = len(chat.bot_messages())
    assert _post(server, fake.webhook_payload(invoice.external_id)).status_code == 200
    assert Payment.objects.count() == 1
    assert len(chat.bot_messages()) == messages


def test_a_payment_whose_webhook_never_came_is_credited_by_the_poll(fake: FakeLava, server: str) -> None:
    chat, user = _chat_user(server, "ru")
    paid, waiting, declined = (_invoice(fake, user) for _ in range(3))
    package = paid.package
    # Счёт моложе минуты не трогаем: покупатель ещё на странице оплаты, вебхук вот-вот придёт
    Invoice.objects.filter(pk__in=[paid.pk, waiting.pk, declined.pk]).update(
        created_at=timezone.now() - timedelta(minutes=5)
    )
    fake.pay(paid.external_id)
    fake.decline(declined.external_id)

    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
        billing_tasks.lava_poll()  # повтор ничего не зачисляет второй раз

    assert balance(user) == (20 + package.total_tokens, 0)
    [payment] = Payment.objects.all()
    assert payment.invoice_id == paid.pk
    statuses = dict(Invoice.objects.values_list("pk", "status"))
    assert statuses == {
        paid.pk: Invoice.Status.PAID,
        waiting.pk: Invoice.Status.OPEN,
        declined.pk: Invoice.Status.FAILED,
    }
    with translation.override("ru"):
        receipt = _("✅ Payment received: +{tokens}.\nBalance: {available}.").format(
            tokens=tokens(package.total_tokens), available=tokens(20 + package.total_tokens)
        )
    assert [m.text for m in chat.bot_messages()].count(receipt) == 1
    # Второй проход перечитал у lava лишь ещё ждущий счёт: оплаченный и отклонённый закрыты
    checked = [r.path.rsplit("/", 1)[-1] for r in fake.calls("GET")]
    assert sorted(checked) == sorted(
        [paid.external_id, waiting.external_id, declined.external_id, waiting.external_id]
    )


@pytest.mark.parametrize("route", ["webhook", "poll"])
def test_a_card_payment_of_an_invited_friend_tells_the_inviter_about_the_reward(
    fake: FakeLava, server: str, route: str
) -> None:
    inviter, inviter_user = _chat_user(server, "ru")
    inviter.say("/invite")
    inviter_user.refresh_from_db()
    friend = Chat(server, "en")
    friend.say(f"/start ref_{inviter_user.referral_code}")
    invoice = _invoice(fake, TelegramUser.objects.get(telegram_id=friend.chat_id))
    fake.pay(invoice.external_id)
    if route == "webhook":
        assert _post(server, fake.webhook_payload(invoice.external_id)).status_code == 200
    else:
        Invoice.objects.filter(pk=invoice.pk).update(created_at=timezone.now() - timedelta(minutes=5))
        with _lava_settings(fake), processes.bot_api_of(server):
            billing_tasks.lava_poll()
    with translation.override("ru"):
        note = _("🎁 Your friend made a first purchase: +{tokens}.\nBalance: {available}.").format(
            tokens=tokens(30), available=tokens(20 + 30)
        )
    assert inviter.bot_messages()[-1].text == note


def _aged(*invoices: Invoice) -> None:
    """Старше минуты — опрос их берёт; порядок создания сохраняется."""
    for minutes, invoice in enumerate(reversed(invoices), start=5):
        Invoice.objects.filter(pk=invoice.pk).update(created_at=timezone.now() - timedelta(minutes=minutes))


def _polled(fake: FakeLava) -> list[str]:
    checked = [r.path.rsplit("/", 1)[-1] for r in fake.calls("GET")]
    fake.requests.clear()
    return checked


def test_the_poll_skips_an_invoice_lava_refuses_and_goes_on(fake: FakeLava, server: str) -> None:
    user = user_make()
    refused, paid = _invoice(fake, user), _invoice(fake, user)
    _aged(refused, paid)
    fake.refuse(refused.external_id, 403)
    fake.pay(paid.external_id)
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
    assert _polled(fake) == [refused.external_id, paid.external_id]
    assert balance(user) == (paid.tokens, 0)
    refused.refresh_from_db()
    # Отказ lava — не «не оплачен»: следующий проход спросит снова
    assert refused.status == Invoice.Status.OPEN


def test_abandoned_invoices_take_turns_and_cannot_hide_a_paid_one(
    fake: FakeLava, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lava, "POLL_LIMIT", 2)
    user = user_make()
    *abandoned, paid = (_invoice(fake, user) for _ in range(4))
    _aged(*abandoned, paid)
    fake.pay(paid.external_id)
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
        assert _polled(fake) == [abandoned[0].external_id, abandoned[1].external_id]
        assert balance(user) == (0, 0)
        # Следующий проход начинает с давнее всех перечитанных — с тех, до кого очередь не дошла
        billing_tasks.lava_poll()
        assert _polled(fake) == [abandoned[2].external_id, paid.external_id]
    assert balance(user) == (paid.tokens, 0)


def test_when_lava_is_down_a_pass_stops_and_the_next_one_starts_further(fake: FakeLava, server: str) -> None:
    user = user_make()
    first, second, third = (_invoice(fake, user) for _ in range(3))
    _aged(first, second, third)
    fake.outage = 503
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
        assert _polled(fake) == [first.external_id]
        billing_tasks.lava_poll()
        assert _polled(fake) == [second.external_id]
        fake.outage = None
        billing_tasks.lava_poll()
        assert _polled(fake) == [third.external_id, first.external_id, second.external_id]


def test_a_pass_ends_at_its_time_budget_after_at_least_one_invoice(
    fake: FakeLava, server: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(lava, "POLL_BUDGET_S", 0.0)
    user = user_make()
    first, second = _invoice(fake, user), _invoice(fake, user)
    _aged(first, second)
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
        assert _polled(fake) == [first.external_id]
        billing_tasks.lava_poll()
        assert _polled(fake) == [second.external_id]


def test_a_completed_contract_without_a_receipt_waits_for_it(fake: FakeLava, server: str) -> None:
    invoice = _invoice(fake)
    _aged(invoice)
    fake.pay(invoice.external_id, receipt=False)
    payload = fake.webhook_payload(invoice.external_id)
    # Без суммы и валюты сверять не с чем: вебхук — 5xx (lava повторит), опрос — ждёт; платёж не записан
    assert _post(server, payload).status_code == 503
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
    _credited_nothing(invoice.user)
    fake.pay(invoice.external_id)
    assert _post(server, payload).status_code == 200
    assert balance(invoice.user) == (invoice.tokens, 0)
    [payment] = Payment.objects.all()
    assert (payment.amount, payment.currency, payment.tokens) == (invoice.amount, "RUB", invoice.tokens)


def test_refusals_in_a_row_end_the_pass_instead_of_two_hundred_failing_calls(
    fake: FakeLava, server: str
) -> None:
    """Ключ lava отозвали: отказ по каждому счёту — проход кончается после трёх подряд."""
    user = user_make()
    invoices = [_invoice(fake, user) for _ in range(5)]
    _aged(*invoices)
    for invoice in invoices:
        fake.refuse(invoice.external_id, 401)
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
    assert _polled(fake) == [invoice.external_id for invoice in invoices[: lava.POLL_REFUSED_STOP]]


def test_a_receipt_that_never_comes_is_recorded_for_staff_after_six_hours(
    fake: FakeLava, server: str
) -> None:
    """Оплачен, а чека нет и через 6 ч (окно повторов вебхука прошло): платёж без зачисления, а не тишина."""
    invoice = _invoice(fake)
    Invoice.objects.filter(pk=invoice.pk).update(created_at=timezone.now() - timedelta(hours=7))
    fake.pay(invoice.external_id, receipt=False)
    with _lava_settings(fake), processes.bot_api_of(server):
        billing_tasks.lava_poll()
    [payment] = Payment.objects.all()
    assert (payment.invoice_id, payment.tokens) == (invoice.pk, 0)
    assert payment.note.startswith("unmatched")
    assert balance(invoice.user) == (0, 0)


def test_a_subscription_renewal_credits_nothing_and_is_logged_as_an_error(
    fake: FakeLava, server: str, logs_dir: Path
) -> None:
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    payload = fake.webhook_payload(
        invoice.external_id, event="subscription.recurring.payment.success", status="subscription-active"
    )
    assert _post(server, payload).status_code == 200
    _credited_nothing(invoice.user)
    log = (logs_dir / "lava-key.log").read_text(errors="replace").splitlines()
    [line] = [row for row in log if f"subscription renewal, contract {invoice.external_id}" in row]
    assert "ERROR" in line


def test_an_unknown_contract_is_ignored_and_credits_nobody(fake: FakeLava, server: str) -> None:
    user = user_make()
    # Оплаченный у lava контракт, которого у нас нет (другой клиент того же ключа), и выдуманный
    foreign = fake.contract_add(offer_id=fake.offer_add({"RUB": 199.0}), currency="RUB")
    fake.pay(foreign)
    assert _post(server, fake.webhook_payload(foreign)).status_code == 200
    assert _post(server, fake.webhook_payload(str(uuid.uuid4()))).status_code == 200
    assert not Payment.objects.exists()
    assert not LedgerTransaction.objects.filter(kind="purchase").exists()
    _credited_nothing(user)


def test_when_lava_is_down_the_webhook_answers_5xx_and_a_retry_credits(fake: FakeLava, server: str) -> None:
    invoice = _invoice(fake)
    fake.pay(invoice.external_id)
    payload = fake.webhook_payload(invoice.external_id)
    fake.outage = 503
    assert _post(server, payload).status_code == 503
    fake.outage = "reset"
    assert _post(server, payload).status_code == 503
    _credited_nothing(invoice.user)
    # lava повторяет вебхук — и он проходит, когда API снова отвечает
    fake.outage = None
    assert _post(server, payload).status_code == 200
    assert balance(invoice.user) == (invoice.tokens, 0)


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"\xff\xfe", 400),
        (b"[1, 2]", 200),
        (b'"payment.success"', 200),
        (b"{}", 200),
        (b'{"eventType": "payment.success", "contractId": 42}', 200),
        (b'{"eventType": "payment.success", "contractId": "../../admin"}', 200),
        (b'{"eventType": ["x"], "contractId": "7ea82675-4ded-4133-95a7-a6efbaf165cc"}', 200),
    ],
)
def test_bad_bodies_never_cause_a_server_error(fake: FakeLava, server: str, body: bytes, status: int) -> None:
    assert _post(server, body, **{"Content-Type": "application/json"}).status_code == status
    assert fake.calls() == []
    assert not Payment.objects.exists()


def test_only_post_is_accepted(server: str) -> None:
    assert httpx.get(server + WEBHOOK_PATH, headers={"X-Api-Key": WEBHOOK_KEY}, timeout=10).status_code == 405


# --- /delete_me ---


def test_delete_me_strips_the_buyer_email_from_lava_payments(fake: FakeLava, server: str) -> None:
    """E-mail покупателя приходит и в вебхуке, и в контракте lava: после /delete_me его нет в платежах."""
    chat, user = _chat_user(server, "en")
    paid, late = _invoice(fake, user), _invoice(fake, user)
    fake.pay(paid.external_id)
    assert _post(server, fake.webhook_payload(paid.external_id)).status_code == 200
    payment = Payment.objects.get(external_id=paid.external_id)
    assert payment.raw["webhook"]["buyer"]["email"] == "buyer@example.com"
    assert payment.raw["contract"]["buyer"]["email"] == "buyer@example.com"

    [confirm] = chat.say("/delete_me")
    chat.press(confirm, "del:yes")
    payment.refresh_from_db()
    assert "buyer@example.com" not in str(payment.raw)
    # Для сверки и отчётов остаётся всё, кроме покупателя
    assert payment.raw["webhook"]["contractId"] == paid.external_id
    assert payment.raw["contract"]["status"] == "COMPLETED"
    assert payment.raw["contract"]["receipt"]["currency"] == "RUB"

    # Счёт выставлен до удаления, оплата пришла после: e-mail не записывается снова
    fake.pay(late.external_id)
    assert _post(server, fake.webhook_payload(late.external_id)).status_code == 200
    late_payment = Payment.objects.get(external_id=late.external_id)
    assert "buyer@example.com" not in str(late_payment.raw)
    assert late_payment.raw["webhook"]["contractId"] == late.external_id
    assert balance(user) == (20 + paid.tokens + late.tokens, 0)
