"""Настоящий python-telegram-bot против эмулятора на живом uvicorn (ASGI-приложение проекта)."""

from __future__ import annotations

import io
from typing import Any

import httpx
import pytest
from django.conf import settings
from telegram import (
    Bot,
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputMediaPhoto,
    InputMediaVideo,
    LabeledPrice,
    MenuButtonCommands,
    ReplyKeyboardMarkup,
)
from telegram.constants import ChatAction
from telegram.error import BadRequest, ChatMigrated, Forbidden, InvalidToken, RetryAfter

from botapp.sandbox import services
from botapp.sandbox.services import Failure
from botapp.tests.sandbox.conftest import LiveSandbox, new_chat_id, png

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.slow,
    # retry_after как int: так его сейчас читает отправитель бота
    pytest.mark.filterwarnings("ignore::telegram.warnings.PTBDeprecationWarning"),
    # Проверка самого эмулятора: ошибки Telegram (старый запрос, неверный токен…) здесь вызываются нарочно
    pytest.mark.emulator_violations_expected,
]

KEYBOARD = InlineKeyboardMarkup([[InlineKeyboardButton("🔁 Ещё раз", callback_data="regen:9f2c1a")]])


def test_get_me_describes_the_bot_behind_the_token(live_sandbox: LiveSandbox) -> None:
    async def scenario(bot: Bot) -> Any:
        return await bot.get_me()

    me = live_sandbox.run(scenario)

    assert me.is_bot
    assert me.id == int(live_sandbox.bot().token.split(":")[0])
    # initialize() тоже зовёт getMe
    assert [(c.method, c.status) for c in services.sandbox_calls()] == [("getMe", 200), ("getMe", 200)]


def test_messages_are_sent_edited_and_deleted_in_place(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()

    async def scenario(bot: Bot) -> Any:
        first = await bot.send_message(chat_id, "<b>Баланс</b>: 10", parse_mode="HTML", reply_markup=KEYBOARD)
        second = await bot.send_message(chat_id, "второе")
        edited = await bot.edit_message_text(
            "<i>Баланс</i>: 20", chat_id, first.message_id, parse_mode="HTML"
        )
        with pytest.raises(BadRequest, match=r"(?i)message is not modified"):
            await bot.edit_message_text("<i>Баланс</i>: 20", chat_id, first.message_id, parse_mode="HTML")
        markup = await bot.edit_message_reply_markup(chat_id, first.message_id, reply_markup=KEYBOARD)
        with pytest.raises(BadRequest, match=r"(?i)message to edit not found"):
            await bot.edit_message_text("где ты", chat_id, 999)
        deleted = await bot.delete_message(chat_id, second.message_id)
        return first, second, edited, markup, deleted

    first, second, edited, markup, deleted = live_sandbox.run(scenario)

    assert (first.message_id, second.message_id) == (1, 2)
    assert first.text == "Баланс: 10"
    assert first.entities[0].type == "bold"
    assert first.reply_markup == KEYBOARD
    assert first.from_user.is_bot
    assert edited.text == "Баланс: 20"
    assert edited.edit_date is not None
    assert edited.reply_markup is None  # правка без reply_markup снимает клавиатуру, как в Telegram
    assert markup.reply_markup == KEYBOARD
    assert deleted is True
    stored = services.sandbox_messages(chat_id=chat_id, include_deleted=True)
    assert [(m.message_id, m.text, m.edited, m.deleted) for m in stored] == [
        (1, "Баланс: 20", True, False),
        (2, "второе", False, True),
    ]


def test_a_photo_sent_as_bytes_downloads_back_byte_for_byte(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()
    image = png(640, 480, padding=5000)

    async def scenario(bot: Bot) -> Any:
        message = await bot.send_photo(chat_id, image, caption="Готово ✨", reply_markup=KEYBOARD)
        file = await bot.get_file(message.photo[-1].file_id)
        buffer = io.BytesIO()
        await file.download_to_memory(buffer)
        return message, file, buffer.getvalue()

    message, file, downloaded = live_sandbox.run(scenario)

    assert downloaded == image
    assert (message.photo[-1].width, message.photo[-1].height) == (640, 480)
    assert message.caption == "Готово ✨"
    assert file.file_size == len(image)
    assert "/sandbox/api/file/bot" in file.file_path
    assert "/photos/" in file.file_path
    call = services.sandbox_calls(method="sendPhoto")[0]
    assert call.params["photo"]["size"] == len(image)


def test_documents_and_videos_keep_names_and_types(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()
    original = png(1024, 1024)

    async def scenario(bot: Bot) -> Any:
        document = await bot.send_document(chat_id, original, filename="result.png", caption="Оригинал")
        video = await bot.send_video(
            chat_id, b"\x00\x00\x00\x18ftypmp42" + b"\x00" * 100, width=720, height=1280
        )
        assert document.document is not None
        again = await bot.send_document(chat_id, document.document.file_id)
        return document, video, again

    document, video, again = live_sandbox.run(scenario)

    assert document.document.file_name == "result.png"
    assert document.document.mime_type == "image/png"
    assert document.document.file_size == len(original)
    assert (video.video.width, video.video.height) == (720, 1280)
    assert again.document.file_unique_id == document.document.file_unique_id


def test_an_album_arrives_as_messages_sharing_a_media_group(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()

    async def scenario(bot: Bot) -> Any:
        return await bot.send_media_group(
            chat_id,
            [
                InputMediaPhoto(png(10, 10), caption="Вариант 1"),
                InputMediaPhoto(png(20, 10)),
                InputMediaVideo(b"\x00\x00\x00\x18ftypmp42", width=4, height=4),
            ],
        )

    messages = live_sandbox.run(scenario)

    assert [m.message_id for m in messages] == [1, 2, 3]
    attached = services.sandbox_calls(method="sendMediaGroup")[0].params["_attachments"]
    assert sorted(part["size"] for part in attached.values())[0] == len(b"\x00\x00\x00\x18ftypmp42")
    assert len({m.media_group_id for m in messages}) == 1
    assert messages[0].caption == "Вариант 1"
    assert messages[1].photo[-1].width == 20
    assert messages[2].video is not None


def test_a_stars_invoice_is_paid_and_refunded(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()

    async def send(bot: Bot) -> Any:
        return await bot.send_invoice(
            chat_id, "100 токенов", "Пакет токенов", "order:abc", "XTR", [LabeledPrice("100 токенов", 50)]
        )

    invoice = live_sandbox.run(send)
    pre_checkout = services.sandbox_user_pay_invoice(chat_id=chat_id, message_id=invoice.message_id)

    async def pay(bot: Bot) -> None:
        query_id = pre_checkout["pre_checkout_query"]["id"]
        assert await bot.answer_pre_checkout_query(query_id, ok=True)
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_pre_checkout_query(query_id, ok=True)

    live_sandbox.run(pay)
    # Ответ ok=true порождает служебное сообщение successful_payment — следующий апдейт
    payment = services.sandbox_updates_pending()[-1]["message"]["successful_payment"]

    async def refund(bot: Bot) -> Any:
        charge = payment["telegram_payment_charge_id"]
        refunded = await bot.refund_star_payment(chat_id, charge)
        with pytest.raises(BadRequest, match=r"(?i)charge_already_refunded"):
            await bot.refund_star_payment(chat_id, charge)
        return refunded, await bot.get_star_transactions()

    refunded, transactions = live_sandbox.run(refund)

    assert invoice.invoice.currency == "XTR"
    assert invoice.invoice.total_amount == 50
    assert pre_checkout["pre_checkout_query"]["invoice_payload"] == "order:abc"
    assert payment["total_amount"] == 50
    assert refunded is True
    assert [t.amount for t in transactions.transactions] == [50, 50]
    assert transactions.transactions[1].receiver is not None


def test_a_callback_query_is_answered_once(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()

    async def send(bot: Bot) -> Any:
        return await bot.send_message(chat_id, "Сгенерировать?", reply_markup=KEYBOARD)

    message = live_sandbox.run(send)
    update = services.sandbox_user_press_button(
        chat_id=chat_id, message_id=message.message_id, callback_data="regen:9f2c1a"
    )

    async def answer(bot: Bot) -> Any:
        query_id = update["callback_query"]["id"]
        first = await bot.answer_callback_query(query_id, text="Поехали")
        with pytest.raises(BadRequest, match=r"(?i)query is too old"):
            await bot.answer_callback_query(query_id)
        return first

    assert live_sandbox.run(answer) is True
    assert update["callback_query"]["message"]["message_id"] == message.message_id


def test_commands_menu_button_and_chat_actions_are_remembered(live_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()
    commands = [BotCommand("start", "Начать"), BotCommand("balance", "Баланс")]

    async def scenario(bot: Bot) -> Any:
        assert await bot.set_my_commands(commands, language_code="ru")
        assert await bot.set_chat_menu_button(menu_button=MenuButtonCommands())
        assert await bot.send_chat_action(chat_id, ChatAction.UPLOAD_PHOTO)
        await bot.send_message(
            chat_id, "Меню", reply_markup=ReplyKeyboardMarkup([["💰 Баланс"]], resize_keyboard=True)
        )
        return await bot.get_my_commands(language_code="ru"), await bot.get_my_commands()

    russian, default = live_sandbox.run(scenario)

    assert russian == tuple(commands)
    assert default == ()
    assert services.sandbox_commands(language_code="ru") == [
        {"command": "start", "description": "Начать"},
        {"command": "balance", "description": "Баланс"},
    ]
    assert services.sandbox_calls(method="sendChatAction")[0].params["action"] == "upload_photo"
    chat = services.sandbox_users()[0]
    assert chat.reply_keyboard is not None
    assert chat.reply_keyboard["keyboard"] == [[{"text": "💰 Баланс"}]]


def test_the_webhook_is_set_inspected_and_deleted(live_sandbox: LiveSandbox) -> None:
    async def scenario(bot: Bot) -> Any:
        assert await bot.set_webhook(
            "https://bot.example.com/telegram/webhook/",
            secret_token="s3cr3t-Token_x",  # pragma: allowlist secret
            allowed_updates=["message", "callback_query", "pre_checkout_query"],
            max_connections=10,
            drop_pending_updates=True,
        )
        info = await bot.get_webhook_info()
        assert await bot.delete_webhook()
        return info, await bot.get_webhook_info()

    info, after = live_sandbox.run(scenario)

    assert info.url == "https://bot.example.com/telegram/webhook/"
    assert info.allowed_updates == ("message", "callback_query", "pre_checkout_query")
    assert info.max_connections == 10
    assert info.pending_update_count == 0
    assert after.url == ""


@pytest.mark.parametrize(
    ("failure", "exception", "check"),
    [
        (Failure.FLOOD, RetryAfter, lambda e: e.retry_after == 7),
        (Failure.BLOCKED, Forbidden, lambda e: "bot was blocked by the user" in e.message),
        (Failure.CHAT_NOT_FOUND, BadRequest, lambda e: e.message == "Chat not found"),
        (Failure.MIGRATED, ChatMigrated, lambda e: e.new_chat_id == -1001234567890),
    ],
)
def test_injected_failures_surface_as_ptb_exceptions(
    live_sandbox: LiveSandbox, failure: Failure, exception: type[Exception], check: Any
) -> None:
    chat_id = new_chat_id()
    services.sandbox_inject_failure(
        method="sendMessage",
        failure=failure,
        chat_id=chat_id,
        retry_after=7,
        migrate_to_chat_id=-1001234567890,
    )

    async def scenario(bot: Bot) -> Any:
        with pytest.raises(exception) as caught:
            await bot.send_message(chat_id, "привет")
        # Сбой заказан на один вызов: следующий проходит
        await bot.send_message(chat_id, "привет")
        return caught.value

    assert check(live_sandbox.run(scenario))
    calls = services.sandbox_calls(method="sendMessage", chat_id=chat_id)
    assert calls[0].injected is True
    assert calls[-1].status == 200


def test_a_failure_for_one_chat_leaves_others_alone(live_sandbox: LiveSandbox) -> None:
    target, other = new_chat_id(), new_chat_id()
    services.sandbox_inject_failure(method="sendPhoto", failure=Failure.BLOCKED, chat_id=target, times=2)

    async def scenario(bot: Bot) -> Any:
        await bot.send_photo(other, png())
        for _ in range(2):
            with pytest.raises(Forbidden):
                await bot.send_photo(target, png())
        return await bot.send_photo(target, png())

    assert live_sandbox.run(scenario).chat.id == target


def test_a_wrong_token_is_rejected_by_ptb_as_invalid(live_sandbox: LiveSandbox) -> None:
    async def scenario() -> None:
        async with live_sandbox.bot("123456:WrongTokenForThisSandbox"):
            pass

    import asyncio

    with pytest.raises(InvalidToken):
        asyncio.run(scenario())


def test_a_burst_without_waiting_draws_retry_after(strict_sandbox: LiveSandbox) -> None:
    chat_id = new_chat_id()

    async def scenario(bot: Bot) -> Any:
        accepted = 0
        for _ in range(5):
            try:
                await bot.send_message(chat_id, "спам")
            except RetryAfter as exc:
                return accepted, exc
            accepted += 1
        return accepted, None

    accepted, error = strict_sandbox.run(scenario)

    # Всплеск из трёх сообщений в личный чат пропускается, четвёртое — 429
    assert accepted == 3
    assert error is not None
    assert error.retry_after >= 1
    rejected = services.sandbox_calls(method="sendMessage", chat_id=chat_id)[-1]
    assert rejected.status == 429
    assert rejected.error.startswith("Too Many Requests: retry after ")


def test_the_overall_rate_spans_chats(strict_sandbox: LiveSandbox) -> None:
    async def scenario(bot: Bot) -> Any:
        for sent in range(60):
            try:
                await bot.send_message(new_chat_id(), "рассылка")
            except RetryAfter as exc:
                return sent, exc.retry_after
        return 60, None

    sent, retry_after = strict_sandbox.run(scenario)

    # 10/с с допуском в секунду: пачка из 11 и дальше по одному в 100 мс — 60 подряд не пройдут
    assert sent < 60
    assert retry_after == 1


def test_the_emulator_answers_under_a_host_outside_allowed_hosts(live_sandbox: LiveSandbox) -> None:
    """docker compose: worker и beat зовут эмулятор как http://web:8000 — Host не из ALLOWED_HOSTS."""
    assert "web" not in settings.ALLOWED_HOSTS
    chat_id = new_chat_id()
    image = png(8, 8)

    async def scenario(bot: Bot) -> Any:
        message = await bot.send_photo(chat_id, image)
        return await bot.get_file(message.photo[-1].file_id)

    file = live_sandbox.run(scenario)
    headers = {"Host": "web:8000"}
    token = settings.TELEGRAM_BOT_TOKEN
    me = httpx.post(f"{live_sandbox.base}/sandbox/api/bot{token}/getMe", headers=headers, timeout=10)
    assert (me.status_code, me.json()["ok"]) == (200, True), me.text
    assert httpx.get(str(file.file_path), headers=headers, timeout=10).content == image
    # Прочие страницы Host проверяют: здесь адрес «web» не подходит
    assert httpx.get(f"{live_sandbox.base}/sandbox/", headers=headers, timeout=10).status_code == 400
