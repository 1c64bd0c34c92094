"""Деньги в чате: баланс, покупка звёздами, pre_checkout, промокоды, приглашения, бонус — через вебхук."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import formats, timezone, translation

from botapp.billing import ledger, selectors, stars
from botapp.billing.errors import RefundRefused
from botapp.generation import drafts, jobs
from botapp.models import (
    ErrorEvent,
    GenerationJob,
    Invoice,
    JobStatus,
    LedgerEntry,
    LedgerTransaction,
    Payment,
    PromoCode,
    Referral,
    RefundDebt,
    TelegramUser,
    TokenPackage,
    TransactionKind,
)
from botapp.sandbox import services
from botapp.sandbox.models import SandboxCall, SandboxMessage, SandboxUpdate
from botapp.tasks import billing as billing_tasks
from botapp.telegram.formatting import from_tokens, images, tokens, videos
from botapp.telegram.keyboards import menu_labels
from botapp.tests.billing.factories import balance, user_fund
from botapp.tests.generation.factories import image_job_make
from botapp.tests.telegram.test_chat_paths import BOT_USERNAME, Chat, _assert_language, _inline

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]


def _user(chat: Chat) -> TelegramUser:
    return TelegramUser.objects.get(telegram_id=chat.chat_id)


def _invoice_message(chat: Chat, package: TokenPackage) -> SandboxMessage:
    """⭐ → пакет → сообщение-счёт."""
    [menu] = chat.say("/topup")
    chat.press(menu, f"top:stars:{package.pk}")
    [invoice] = [m for m in chat.bot_messages() if m.kind == "invoice"][-1:]
    return invoice


def _pre_checkout_refusal() -> str:
    """Последний ответ на pre_checkout_query — отказ; его текст."""
    answer = services.sandbox_calls(method="answerPreCheckoutQuery")[-1]
    assert answer.params["ok"] in (False, "false", "False")
    assert not Payment.objects.exists()
    return str(answer.params.get("error_message"))


def _buy(chat: Chat, package: TokenPackage, *, deliver_payment: bool = True) -> SandboxMessage:
    """⭐ → пакет → счёт → «Оплатить ⭐»; возвращает сообщение-счёт."""
    invoice = _invoice_message(chat, package)
    services.sandbox_user_pay_invoice(chat_id=chat.chat_id, message_id=invoice.message_id)
    if deliver_payment:
        services.sandbox_updates_deliver_pending(base_url=chat.base)
    else:
        # Доставляем только pre_checkout_query; successful_payment «теряется»
        query = SandboxUpdate.objects.filter(delivered=False).order_by("id").first()
        assert query is not None
        chat.deliver({"update_id": query.pk})
        SandboxUpdate.objects.filter(delivered=False).update(delivered=True)
    return invoice


@pytest.mark.parametrize("language", ["ru", "en"])
def test_balance_shows_the_welcome_bonus_and_what_it_buys(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    [welcome] = chat.say("/start")
    assert chat.expected("🎁 Welcome bonus: {amount}").format(amount=chat.count(tokens, 20)) in welcome.text
    [reply] = chat.say("/balance")
    assert chat.expected("💰 Available: {available}").format(available=chat.count(tokens, 20)) in reply.text
    user = TelegramUser.objects.get(telegram_id=chat.chat_id)
    summary = selectors.balance_summary(user=user)
    assert summary.image_price is not None
    assert summary.video_price is not None
    assert summary.video_price > 20, "the bonus buys no video: the line names the video price instead of 0"
    # Цена видео — «от N» самой дешёвой включённой модели, та же, что в меню видео (не модели по умолчанию)
    cheapest = min(p for m in drafts.models_for("video") if (p := drafts.model_min_price(m)) is not None)
    default_video = drafts.model_get("", "video")
    assert cheapest == summary.video_price < (drafts.model_min_price(default_video) or 0)
    assert (
        chat.expected("That is ≈ {images}; videos cost {price}.").format(
            images=chat.count(images, 1), price=chat.count(from_tokens, cheapest)
        )
        in reply.text
    )
    with translation.override(language):
        [video_menu] = chat.say(menu_labels()["video"])
    assert any(b["text"].endswith(f" · {chat.count(from_tokens, cheapest)}") for b in _inline(video_menu))
    assert {b["callback_data"] for b in _inline(reply)} == {"top:menu", "bal:promo", "bal:hist:0"}
    # Хватает и на видео — оба числа; меньше цены картинки — цена вместо «на 0 изображений»
    user_fund(user, summary.video_price)
    [reply] = chat.say("/balance")
    assert (
        chat.expected("That is ≈ {images} or {videos}.").format(
            images=chat.count(images, (20 + summary.video_price) // summary.image_price),
            videos=chat.count(videos, 1),
        )
        in reply.text
    )
    left = summary.image_price - 1
    ledger.debit(
        user=user, amount=20 + summary.video_price - left, key=f"spend-{user.pk}",
        kind=TransactionKind.ADJUSTMENT, destination=ledger.ADJUSTMENTS,
    )  # fmt: skip
    [reply] = chat.say("/balance")
    assert (
        chat.expected("Not enough for an image yet: one costs {price}.").format(
            price=chat.count(tokens, summary.image_price)
        )
        in reply.text
    )
    assert chat.count(images, 0) not in reply.text


@pytest.mark.parametrize(("language", "label"), [("ru", "💰 Баланс"), ("en", "💰 Balance")])
def test_the_balance_menu_button_shows_the_balance_and_its_buttons(
    sandbox_mode_server: str, language: str, label: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    [reply] = chat.say(label)
    assert reply.text.startswith(
        chat.expected("💰 Available: {available}").format(available=chat.count(tokens, 20))
    )
    _assert_language(reply.text, language)
    buttons = {b["callback_data"]: b["text"] for b in _inline(reply)}
    assert buttons == {
        "top:menu": chat.expected("⭐ Top up"),
        "bal:promo": chat.expected("🎟 Promo code"),
        "bal:hist:0": chat.expected("📜 History"),
    }


@pytest.mark.parametrize(("language", "label"), [("ru", "⭐ Пополнить"), ("en", "⭐ Top up")])
def test_the_top_up_menu_button_lists_the_packages_for_stars(
    sandbox_mode_server: str, language: str, label: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    [reply] = chat.say(label)
    assert reply.text == chat.expected("Choose a package. Payment is in Telegram Stars")
    _assert_language(reply.text, language)
    packages = list(TokenPackage.objects.filter(is_enabled=True).order_by("order", "stars"))
    assert packages
    expected = []
    for package in packages:
        title = package.title_ru if language == "ru" else package.title_en
        text = chat.expected("{title} · {tokens} · {stars} ⭐").format(
            title=title, tokens=chat.count(tokens, package.total_tokens), stars=package.stars
        )
        if package.bonus_percent:
            text += f" (+{package.bonus_percent}%)"
        expected.append({"text": text, "callback_data": f"top:stars:{package.pk}"})
    assert _inline(reply) == expected


@pytest.mark.parametrize("language", ["ru", "en"])
def test_invite_shows_the_personal_link_and_the_rewards(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    [reply] = chat.say("/invite")
    code = _user(chat).referral_code
    assert code
    assert reply.text == chat.expected("Invite friends with your link:").format(
        link=f"https://t.me/{BOT_USERNAME}?start=ref_{code}",
        inviter=chat.count(tokens, 30),
        invitee=chat.count(tokens, 20),
        joined=0,
        paid=0,
    )
    _assert_language(reply.text, language)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_an_invoice_sent_to_the_user_is_in_the_chat_log(sandbox_mode_server: str, language: str) -> None:
    from botapp.models import ChatLogEntry

    chat = Chat(sandbox_mode_server, language)
    package = TokenPackage.objects.get(stars=150)
    invoice = _invoice_message(chat, package)
    entry = ChatLogEntry.objects.get(user__telegram_id=chat.chat_id, message_id=invoice.message_id)
    assert (entry.direction, entry.media_type, entry.file_id) == ("out", "invoice", "")
    title = package.title_ru if language == "ru" else package.title_en
    description = chat.expected("{tokens} for image and video generation.").format(
        tokens=chat.count(tokens, package.total_tokens)
    )
    assert entry.text == f"{title}\n{description}\n150 XTR"


def test_buying_a_package_with_stars_credits_once_and_sends_a_receipt(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    package = TokenPackage.objects.get(stars=150)
    invoice = _buy(chat, package)
    [call] = services.sandbox_calls(method="sendInvoice")
    assert call.params["currency"] == "XTR"
    assert "provider_token" not in call.params
    assert invoice.extra["invoice"]["total_amount"] == 150
    [answer] = services.sandbox_calls(method="answerPreCheckoutQuery")
    assert answer.params["ok"] in (True, "true", "True")
    payment = Payment.objects.get()
    assert payment.tokens == package.total_tokens == 165
    assert balance(_user(chat)) == (20 + 165, 0)
    receipt = chat.bot_messages()[-1]
    assert receipt.text == chat.expected("✅ Payment received").format(
        tokens=chat.count(tokens, 165), available=chat.count(tokens, 185)
    )
    # Повтор того же апдейта (тот же update_id) — дедупликация; копия с новым update_id — ключ платежа
    message_update = SandboxUpdate.objects.filter(payload__has_key="message").order_by("-id").first()
    assert message_update is not None
    assert services.sandbox_update_deliver(update_id=message_update.pk, base_url=chat.base) == 200
    copy = SandboxUpdate.objects.create(payload=message_update.payload)
    assert services.sandbox_update_deliver(update_id=copy.pk, base_url=chat.base) == 200
    assert Payment.objects.count() == 1
    assert balance(_user(chat)) == (185, 0)
    assert chat.bot_messages()[-1].message_id == receipt.message_id  # второго чека нет


@pytest.mark.parametrize(
    ("change", "msgid"),
    [
        ({"total_amount": 1}, "The price has changed."),
        ({"currency": "USD"}, "This invoice has a wrong currency."),
        ({"invoice_payload": "nb:unknown"}, "This invoice is no longer valid."),
    ],
)
def test_a_tampered_pre_checkout_query_is_refused_with_a_reason(
    sandbox_mode_server: str, change: dict[str, Any], msgid: str
) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    _invoice_message(chat, TokenPackage.objects.get(stars=50))
    invoice = Invoice.objects.get()
    update = SandboxUpdate.objects.create(
        payload={
            "pre_checkout_query": {
                "id": "777000111",
                "from": {"id": chat.chat_id, "is_bot": False, "first_name": "Ann", "language_code": "en"},
                "currency": "XTR",
                "total_amount": 50,
                "invoice_payload": f"nb:{invoice.nonce}",
                **change,
            }
        }
    )
    services.sandbox_update_deliver(update_id=update.pk, base_url=chat.base)
    assert _pre_checkout_refusal() == chat.expected(msgid)


@pytest.mark.parametrize("change", [{"stars": 75}, {"bonus_percent": 50}])
def test_an_invoice_issued_before_the_package_changed_cannot_be_paid(
    sandbox_mode_server: str, change: dict[str, int]
) -> None:
    """Счёт в чате живёт вечно: после смены цены или бонуса пакета он не продаёт по-старому."""
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    package = TokenPackage.objects.get(stars=50)
    invoice = _invoice_message(chat, package)
    TokenPackage.objects.filter(pk=package.pk).update(**change)
    services.sandbox_user_pay_invoice(chat_id=chat.chat_id, message_id=invoice.message_id)
    services.sandbox_updates_deliver_pending(base_url=chat.base)
    assert _pre_checkout_refusal() == chat.expected("The price has changed. Open /topup and try again.")
    assert balance(_user(chat)) == (20, 0)


def test_a_banned_user_cannot_pay(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    invoice = _invoice_message(chat, TokenPackage.objects.get(stars=50))
    TelegramUser.objects.filter(telegram_id=chat.chat_id).update(is_banned=True)
    services.sandbox_user_pay_invoice(chat_id=chat.chat_id, message_id=invoice.message_id)
    services.sandbox_updates_deliver_pending(base_url=chat.base)
    _pre_checkout_refusal()


def test_a_refund_takes_the_tokens_back_once(sandbox_bot_api: str) -> None:
    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    payment = Payment.objects.get()
    stars.stars_refund(payment=payment, actor=None)
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert balance(_user(chat)) == (20, 0)
    with pytest.raises(RefundRefused):
        stars.stars_refund(payment=Payment.objects.get(), actor=None)
    assert balance(_user(chat)) == (20, 0)
    assert len(services.sandbox_calls(method="refundStarPayment")) == 1


def test_a_refund_that_telegram_refuses_moves_no_tokens(sandbox_bot_api: str) -> None:
    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    services.sandbox_inject_failure(
        method="refundStarPayment", error_code=400, description="Bad Request: REFUND_FAILED"
    )
    with pytest.raises(RefundRefused, match=r"(?i)refund_failed"):
        stars.stars_refund(payment=Payment.objects.get(), actor=None)
    assert Payment.objects.get().status == Payment.Status.PAID
    assert balance(_user(chat)) == (70, 0)


def test_a_refund_of_spent_tokens_is_refused_and_telegram_is_not_called(sandbox_bot_api: str) -> None:
    from botapp.billing import ledger

    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    ledger.capture(hold=ledger.hold(user=_user(chat), amount=60, key="job-spent"), amount=60)
    with pytest.raises(RefundRefused, match="already spent"):
        stars.stars_refund(payment=Payment.objects.get(), actor=None)
    assert Payment.objects.get().status == Payment.Status.PAID
    assert balance(_user(chat)) == (10, 0)
    assert services.sandbox_calls(method="refundStarPayment") == []


def refunded_payment_update(chat: Chat, payment: Payment, *, stars: int, message_id: int) -> SandboxUpdate:
    """Служебное сообщение refunded_payment: Telegram вернул звёзды сам (в очереди эмулятора)."""
    return SandboxUpdate.objects.create(
        payload={
            "message": {
                "message_id": message_id,
                "date": 1_790_000_000,
                "chat": {"id": chat.chat_id, "type": "private", "first_name": "Ann"},
                # Язык — как в настоящем апдейте: без него бот считает пользователя русскоязычным
                "from": {
                    "id": chat.chat_id,
                    "is_bot": False,
                    "first_name": "Ann",
                    "language_code": chat.language,
                },
                "refunded_payment": {
                    "currency": "XTR",
                    "total_amount": stars,
                    "invoice_payload": payment.raw["invoice_payload"],
                    "telegram_payment_charge_id": payment.external_id,
                },
            }
        }
    )


def _deliver_refunds(chat: Chat, update: SandboxUpdate, copies: int = 2) -> list[str]:
    """Доставить копии апдейта refunded_payment (Telegram может прислать дважды); ответы бота на каждую."""
    replies = []
    for _ in range(copies):
        copy = SandboxUpdate.objects.create(payload=update.payload)
        assert services.sandbox_update_deliver(update_id=copy.pk, base_url=chat.base) == 200
        replies.append(chat.bot_messages()[-1].text)
    return replies


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_refunded_payment_message_from_telegram_takes_the_tokens_back(
    sandbox_mode_server: str, language: str
) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    update = refunded_payment_update(chat, Payment.objects.get(), stars=50, message_id=999001)
    first, second = _deliver_refunds(chat, update)
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert balance(_user(chat)) == (20, 0)
    assert first == chat.expected("The payment was refunded. Taken back from the balance: {tokens}.").format(
        tokens=chat.count(tokens, 50)
    )
    assert second == chat.expected("This payment has already been refunded; nothing changed.")
    _assert_language(second, language)


def test_telegram_confirming_a_refund_begun_in_the_admin_says_the_tokens_were_taken(
    sandbox_bot_api: str,
) -> None:
    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    services.sandbox_inject_failure(method="refundStarPayment", retry_after=1)
    with pytest.raises(RefundRefused, match="outcome unknown"):
        stars.stars_refund(payment=Payment.objects.get(), actor=None)
    assert Payment.objects.get().status == Payment.Status.REFUND_PENDING
    update = refunded_payment_update(chat, Payment.objects.get(), stars=50, message_id=999005)
    [reply] = _deliver_refunds(chat, update, 1)
    # Токены сняты ещё шагом 1 возврата из админки: «списано 50», а не «списано 0»
    assert reply == chat.expected("The payment was refunded. Taken back").format(
        tokens=chat.count(tokens, 50)
    )
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert balance(_user(chat)) == (20, 0)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_refund_of_a_payment_we_do_not_know_says_so(sandbox_mode_server: str, language: str) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    unknown = Payment(external_id="stxUNKNOWN", raw={"invoice_payload": "nb:unknown"})
    [reply] = _deliver_refunds(chat, refunded_payment_update(chat, unknown, stars=50, message_id=999004), 1)
    assert reply == chat.expected("Telegram reported a refund of a payment we have no record of.")
    _assert_language(reply, language)
    assert balance(_user(chat)) == (20, 0)


@pytest.mark.parametrize("language", ["ru", "en"])
def test_a_refund_while_tokens_are_reserved_takes_them_back_when_the_job_is_cancelled(
    sandbox_mode_server: str, language: str, jobs_unpublished: None
) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50))
    user = _user(chat)
    # Задание ждёт в очереди (jobs_unpublished): никакой воркер не выполнит его раньше отмены
    job = image_job_make(user, key="reserved", outputs=4)
    assert balance(user) == (20 + 50 - 54, 54)
    update = refunded_payment_update(chat, Payment.objects.get(), stars=50, message_id=999002)
    reply, _again = _deliver_refunds(chat, update)
    # Не «токены списаны»: снято 16, а 34 в резерве под задание — они спишутся, когда холд вернётся
    assert reply == "\n".join(
        [
            chat.expected("The payment was refunded. Taken back from the balance: {tokens}.").format(
                tokens=chat.count(tokens, 16)
            ),
            chat.expected("Still owed: {tokens}.").format(tokens=chat.count(tokens, 34)),
        ]
    )
    _assert_language(reply, language)
    payment = Payment.objects.get()
    assert (payment.status, payment.refund_shortfall) == (Payment.Status.REFUNDED, 50 - 16)
    assert balance(user) == (0, 54)
    # Задание отменено, холд вернулся — сначала гасится долг по возврату, а не остаётся пользователю
    assert jobs.job_cancel(job_id=job.pk, user=user) == "cancelled"
    assert balance(user) == (20, 0)
    assert ledger.debt_outstanding(user=user) == 0
    taken = LedgerEntry.objects.filter(
        account__user=user, transaction__kind=TransactionKind.PAYMENT_REFUND
    ).values_list("amount", flat=True)
    assert sorted(taken) == [-34, -16]


@pytest.mark.parametrize("language", ["ru", "en"])
def test_reconciliation_credits_a_payment_whose_update_was_lost_once_and_sends_the_receipt(
    sandbox_bot_api: str, language: str
) -> None:
    chat = Chat(sandbox_bot_api, language)
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50), deliver_payment=False)
    assert not Payment.objects.exists()
    billing_tasks.reconcile_stars()
    assert stars.stars_reconcile() == []
    assert Payment.objects.count() == 1
    assert balance(_user(chat)) == (70, 0)
    # Апдейт об оплате потерялся — значит, и чека пользователь не видел: сверка присылает его, один раз
    receipt = chat.expected("✅ Payment received").format(
        tokens=chat.count(tokens, 50), available=chat.count(tokens, 70)
    )
    billing_tasks.reconcile_stars()
    assert [m.text for m in chat.bot_messages()].count(receipt) == 1


def test_a_reconciliation_that_fails_on_a_later_page_has_already_sent_the_receipt(
    sandbox_bot_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Чек уходит сразу после зачисления: сбой Telegram на следующей странице его не отменяет."""
    from telegram.error import TelegramError

    from botapp.sandbox.models import SandboxStarPayment

    chat = Chat(sandbox_bot_api, "en")
    chat.say("/start")
    _buy(chat, TokenPackage.objects.get(stars=50), deliver_payment=False)
    # Оплаты других ботов после нашей: наша — на первой странице, за ней есть вторая
    SandboxStarPayment.objects.bulk_create(
        SandboxStarPayment(charge_id=f"stxLATER{n:04d}", user_id=8_000_000 + n, amount=1, invoice_payload="x")
        for n in range(150)
    )
    send = billing_tasks._stars_receipt_send

    def send_then_break_telegram(result: Any) -> None:
        send(result)
        services.sandbox_inject_failure(method="getStarTransactions", failure="server_error", times=5)

    monkeypatch.setattr(billing_tasks, "_stars_receipt_send", send_then_break_telegram)
    with pytest.raises(TelegramError):
        billing_tasks.reconcile_stars()
    assert balance(_user(chat)) == (70, 0)
    receipt = chat.expected("✅ Payment received").format(
        tokens=chat.count(tokens, 50), available=chat.count(tokens, 70)
    )
    assert [m.text for m in chat.bot_messages()].count(receipt) == 1
    services.sandbox_failures_clear()


def test_promo_codes_from_the_command_the_button_and_the_deep_link(sandbox_mode_server: str) -> None:
    PromoCode.objects.create(code="spring", amount=30, max_redemptions=10)
    PromoCode.objects.create(code="summer", amount=5, max_redemptions=10)
    chat = Chat(sandbox_mode_server, "ru")
    chat.say("/start promo_SPRING")
    assert balance(_user(chat)) == (20 + 30, 0)
    [again] = chat.say("/promo spring")
    assert again.text == chat.expected("You have already used this promo code.")
    [reply] = chat.say("/balance")
    chat.press(reply, "bal:promo")
    [accepted] = chat.say("SUMMER")
    assert accepted.text == chat.expected("🎟 Promo code accepted").format(
        amount=chat.count(tokens, 5), available=chat.count(tokens, 55)
    )
    [unknown] = chat.say("/promo nope")
    assert unknown.text == chat.expected("There is no such promo code.")


def test_guessing_promo_codes_is_cut_off_after_five_unknown_codes(sandbox_mode_server: str) -> None:
    # Перебор: после PROMO_MISSES_MAX несуществующих кодов даже верный код не ищется до конца окна
    PromoCode.objects.create(code="insider", amount=40, max_redemptions=10)
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    for guess in ("alpha", "bravo", "charlie", "delta", "echo"):
        [miss] = chat.say(f"/promo {guess}")
        assert miss.text == chat.expected("There is no such promo code.")
    too_many = chat.expected("Too many attempts with unknown promo codes. Please try again in an hour.")
    [refused] = chat.say("/promo insider")
    assert refused.text == too_many
    [deep_link] = chat.say("/start promo_insider")
    assert too_many in deep_link.text
    assert balance(_user(chat)) == (20, 0)
    # Окно кончилось — код снова принимается
    cache.delete(f"promo-misses:{_user(chat).pk}")
    [accepted] = chat.say("/promo insider")
    assert accepted.text == chat.expected("🎟 Promo code accepted").format(
        amount=chat.count(tokens, 40), available=chat.count(tokens, 60)
    )


@pytest.mark.emulator_tolerates("Bad Request: message is not modified")
def test_a_double_tap_on_older_turns_the_history_page_without_an_apology(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    for amount in range(1, 10):
        user_fund(_user(chat), amount)  # с приветственным бонусом — 10 строк, страница — 8
    [reply] = chat.say("/balance")
    chat.press(reply, "bal:hist:0")
    history = chat.bot_messages()[-1]
    since = SandboxCall.objects.order_by("-pk").values_list("pk", flat=True).first()
    # Двойное нажатие: оба апдейта созданы до того, как бот перелистнул страницу
    taps = [
        services.sandbox_user_press_button(
            chat_id=chat.chat_id, message_id=history.message_id, callback_data="bal:hist:1"
        )
        for _ in range(2)
    ]
    for tap in taps:
        chat.deliver(tap)
    [page] = [m for m in chat.bot_messages() if m.message_id == history.message_id]
    assert [b["callback_data"] for b in _inline(page)] == ["bal:hist:0"]
    assert chat.bot_messages()[-1].message_id == history.message_id  # ни извинения, ни другого сообщения
    assert not ErrorEvent.objects.exists()
    # Гонка была: вторая правка получила от Telegram «message is not modified»
    refused = SandboxCall.objects.filter(pk__gt=since, method="editMessageText", status=400)
    assert [c.error.split(":")[1].strip() for c in refused] == ["message is not modified"]


def test_referral_rewards_both_only_after_the_first_payment(sandbox_mode_server: str) -> None:
    inviter = Chat(sandbox_mode_server, "en")
    inviter.say("/start")
    [link] = inviter.say("/invite")
    code = _user(inviter).referral_code
    assert code is not None
    assert f"?start=ref_{code}" in link.text
    friend = Chat(sandbox_mode_server, "en")
    friend.say(f"/start ref_{code.upper()}")
    assert Referral.objects.filter(inviter=_user(inviter), invitee=_user(friend)).exists()
    assert balance(_user(inviter)) == (20, 0)
    _buy(friend, TokenPackage.objects.get(stars=50))
    assert balance(_user(inviter)) == (20 + 30, 0)
    assert balance(_user(friend)) == (20 + 50 + 20, 0)
    _buy(friend, TokenPackage.objects.get(stars=50))
    assert balance(_user(inviter)) == (50, 0)  # награда один раз
    [stats] = inviter.say("/invite")
    assert "Friends joined: 1, paid: 1." in stats.text


def _invited(base: str, inviter_language: str, friend_language: str) -> tuple[Chat, Chat]:
    """Пригласивший (уже с кодом) и друг, пришедший по его ссылке."""
    inviter = Chat(base, inviter_language)
    inviter.say("/start")
    inviter.say("/invite")
    friend = Chat(base, friend_language)
    friend.say(f"/start ref_{_user(inviter).referral_code}")
    return inviter, friend


@pytest.mark.parametrize(("inviter_language", "friend_language"), [("ru", "en"), ("en", "ru")])
def test_the_inviter_is_told_about_the_reward_once_in_their_language(
    sandbox_mode_server: str, inviter_language: str, friend_language: str
) -> None:
    inviter, friend = _invited(sandbox_mode_server, inviter_language, friend_language)
    told = len(inviter.bot_messages())
    _buy(friend, TokenPackage.objects.get(stars=50))
    [note] = inviter.bot_messages()[told:]
    assert note.text == inviter.expected("🎁 Your friend made a first purchase").format(
        tokens=inviter.count(tokens, 30), available=inviter.count(tokens, 20 + 30)
    )
    _assert_language(note.text, inviter_language)
    # Награда одна — и сообщение одно
    _buy(friend, TokenPackage.objects.get(stars=50))
    assert len(inviter.bot_messages()) == told + 1


def test_an_inviter_who_blocked_the_bot_still_gets_the_reward_and_the_payer_the_receipt(
    sandbox_mode_server: str,
) -> None:
    inviter, friend = _invited(sandbox_mode_server, "en", "en")
    services.sandbox_inject_failure(method="sendMessage", failure="blocked", chat_id=inviter.chat_id)
    _buy(friend, TokenPackage.objects.get(stars=50))
    assert balance(_user(inviter)) == (20 + 30, 0)
    assert friend.bot_messages()[-1].text == friend.expected("✅ Payment received").format(
        tokens=friend.count(tokens, 50), available=friend.count(tokens, 20 + 50 + 20)
    )


def test_history_tells_the_inviters_reward_from_the_invitees_bonus(sandbox_mode_server: str) -> None:
    inviter, friend = _invited(sandbox_mode_server, "ru", "ru")
    _buy(friend, TokenPackage.objects.get(stars=50))
    for chat, own, other, amount in (
        (inviter, "Referral reward", "Invite bonus", 30),
        (friend, "Invite bonus", "Referral reward", 20),
    ):
        [reply] = chat.say("/balance")
        chat.press(reply, "bal:hist:0")
        history = chat.bot_messages()[-1].text
        assert f" · {chat.expected(own)} · +{amount}" in history
        assert chat.expected(other) not in history


@pytest.mark.parametrize("refund", ["admin", "telegram"])
def test_a_refund_of_the_rewarded_payment_takes_both_referral_rewards_back_once(
    sandbox_bot_api: str, refund: str
) -> None:
    inviter = Chat(sandbox_bot_api, "ru")
    inviter.say("/start")
    inviter.say("/invite")
    code = _user(inviter).referral_code
    friend = Chat(sandbox_bot_api, "en")
    friend.say(f"/start ref_{code}")
    _buy(friend, TokenPackage.objects.get(stars=50))
    assert balance(_user(friend)) == (20 + 50 + 20, 0)
    # Награда пригласившего почти вся в резерве под задание: её недостача — долг, как у токенов платежа
    job = ledger.hold(user=_user(inviter), amount=40, key="inviter-job")
    assert balance(_user(inviter)) == (20 + 30 - 40, 40)
    payment = Payment.objects.get()
    if refund == "admin":
        stars.stars_refund(payment=payment, actor=None)
    update = refunded_payment_update(friend, payment, stars=50, message_id=999003)
    first, _again = _deliver_refunds(friend, update)
    if refund == "telegram":
        taken, bonus = friend.count(tokens, 50), friend.count(tokens, 20)
        assert first == "\n".join(
            [
                friend.expected("The payment was refunded. Taken back").format(tokens=taken),
                friend.expected("The invitation bonus for this payment").format(tokens=bonus),
            ]
        )
    else:
        assert first == friend.expected("This payment has already been refunded; nothing changed.")
    assert Payment.objects.get().status == Payment.Status.REFUNDED
    assert balance(_user(friend)) == (20, 0)
    assert balance(_user(inviter)) == (0, 40)
    assert ledger.debt_outstanding(user=_user(inviter)) == 20
    ledger.release(hold=job, reason="job failed")
    assert balance(_user(inviter)) == (20, 0)
    referral = Referral.objects.get()
    assert referral.reward_payment_id == payment.pk
    assert referral.reversed_at is not None
    reversals = LedgerTransaction.objects.filter(kind=TransactionKind.REFERRAL_REVERSAL)
    assert sorted(reversals.values_list("idempotency_key", flat=True)) == [
        f"debt:{RefundDebt.objects.get().pk}:hold:{job.pk}",
        f"referral:{referral.pk}:invitee:reversal",
        f"referral:{referral.pk}:inviter:reversal",
    ]
    [stats] = inviter.say("/invite")
    assert "Пришло друзей: 1, из них оплатили: 0." in stats.text
    [reply] = inviter.say("/balance")
    inviter.press(reply, "bal:hist:0")
    assert inviter.expected("Referral reward cancelled") in inviter.bot_messages()[-1].text
    # У приглашённого — свой бонус и его отмена, а не «награда за приглашение»
    [reply] = friend.say("/balance")
    friend.press(reply, "bal:hist:0")
    history = friend.bot_messages()[-1].text
    assert friend.expected("Invite bonus cancelled") in history
    assert friend.expected("Referral reward") not in history


def test_self_referral_is_refused(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    chat.say("/invite")
    chat.say(f"/start ref_{_user(chat).referral_code}")
    assert not Referral.objects.exists()


def test_the_welcome_bonus_is_not_paid_again_after_delete_me(sandbox_mode_server: str) -> None:
    chat = Chat(sandbox_mode_server, "en")
    chat.say("/start")
    TelegramUser.objects.filter(telegram_id=chat.chat_id).update(lava_email="ann@example.com")
    [confirm] = chat.say("/delete_me")
    chat.press(confirm, "del:yes")
    assert _user(chat).lava_email == ""
    [welcome] = chat.say("/start")
    assert "Welcome bonus" not in welcome.text
    assert balance(_user(chat)) == (20, 0)


def test_history_lists_movements_in_the_users_language(sandbox_mode_server: str) -> None:
    PromoCode.objects.create(code="spring", amount=30, max_redemptions=10)
    chat = Chat(sandbox_mode_server, "ru")
    chat.say("/start promo_spring")
    [reply] = chat.say("/balance")
    chat.press(reply, "bal:hist:0")
    history = chat.bot_messages()[-1]
    assert chat.expected("Welcome bonus") in history.text
    assert chat.expected("Promo code") in history.text
    assert "+30" in history.text


@pytest.mark.parametrize("language", ["ru", "en"])
def test_history_after_a_generation_shows_local_time_and_one_charge(
    sandbox_mode_server: str, language: str, jobs_unpublished: None
) -> None:
    chat = Chat(sandbox_mode_server, language)
    chat.say("/start")
    user = _user(chat)
    user_fund(user, 100)
    # Задания ждут в очереди (jobs_unpublished); урегулируем их сами, как после доставки результата
    done = image_job_make(user, key="done", outputs=4)
    half = image_job_make(user, key="half", outputs=4)
    GenerationJob.objects.filter(pk__in=[done.pk, half.pk]).update(status=JobStatus.GENERATED)
    jobs.job_settle_delivered(job=done, delivered=4)
    charged = jobs.job_settle_delivered(job=half, delivered=2)
    assert 0 < charged < half.price
    [reply] = chat.say("/balance")
    chat.press(reply, "bal:hist:0")
    lines = chat.bot_messages()[-1].text.splitlines()

    def when(key: str) -> str:
        created = LedgerTransaction.objects.get(idempotency_key=key).created_at
        # Москва — не UTC: иначе проверка местного времени ничего бы не проверяла
        assert timezone.localtime(created).utcoffset() != timedelta(0)
        with translation.override(language):
            utc = formats.date_format(created, "SHORT_DATETIME_FORMAT")
            assert utc not in "\n".join(lines)
            return formats.date_format(timezone.localtime(created), "SHORT_DATETIME_FORMAT")

    # Новые сверху: остаток уменьшился один раз на задание — при резервировании
    assert lines[1:5] == [
        f"{when(f'settle:hold:{half.hold_id}')} · "
        + chat.expected("Generation done: the unused reserve was returned")
        + f" · +{half.price - charged}",
        f"{when(f'settle:hold:{done.hold_id}')} · "
        + chat.expected("Generation done: the reserve of {tokens} was used").format(
            tokens=chat.count(tokens, done.price)
        ),
        f"{when(f'hold:{half.hold_id}')} · {chat.expected('Reserved for a generation')} · -{half.price}",
        f"{when(f'hold:{done.hold_id}')} · {chat.expected('Reserved for a generation')} · -{done.price}",
    ]
