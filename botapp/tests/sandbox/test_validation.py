"""Проверка запросов по спецификации: случаи порождаются из telegram-bot-api.json, а не списком полей."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.test import override_settings

from botapp.sandbox import files, services, spec
from botapp.sandbox.state import chat_get_or_create, message_create
from botapp.tests.sandbox.conftest import SandboxApi, png

pytestmark = [pytest.mark.django_db]

# Методы, которыми пользуется бот (ARCHITECTURE §4, §7)
BOT_METHODS = (
    "getMe", "sendMessage", "editMessageText", "editMessageReplyMarkup", "editMessageCaption",
    "deleteMessage", "sendChatAction", "sendPhoto", "sendDocument", "sendVideo", "sendMediaGroup",
    "answerCallbackQuery", "getFile", "setMyCommands", "getMyCommands", "setWebhook", "getWebhookInfo",
    "deleteWebhook", "sendInvoice", "answerPreCheckoutQuery", "refundStarPayment", "getStarTransactions",
    "setChatMenuButton",
)  # fmt: skip
CHAT_ID = 4242


def _world() -> dict[str, Any]:
    """Состояние, на которое ссылаются корректные запросы: чат, сообщения, файлы, платёж."""
    chat = chat_get_or_create(CHAT_ID)
    text = message_create(chat=chat, direction="bot", kind="text", text="hello")
    photo = files.file_store(data=png(), kind="photo", width=2, height=1)
    media = message_create(
        chat=chat,
        direction="bot",
        kind="photo",
        caption="old",
        extra={"photo": files.media_object(photo, "photo")},
    )
    document = files.file_store(
        data=b"%PDF-1.4", kind="document", file_name="a.pdf", mime_type="application/pdf"
    )
    video = files.file_store(data=b"\x00\x00\x00\x18ftypmp42", kind="video", mime_type="video/mp4")
    from botapp.sandbox.models import SandboxStarPayment

    SandboxStarPayment.objects.create(charge_id="stx-1", user_id=CHAT_ID, amount=5)
    return {
        "text": text.message_id,
        "media": media.message_id,
        "photo": photo,
        "doc": document,
        "video": video,
    }


def baseline(method: str, world: dict[str, Any]) -> dict[str, Any]:
    """Корректный запрос: обязательные поля по спецификации + то, чего требует поведение."""
    keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": "go"}]]}
    known: dict[str, Any] = {
        "chat_id": CHAT_ID,
        "message_id": world["text"],
        "text": "new text",
        "photo": world["photo"].file_id,
        "document": world["doc"].file_id,
        "video": world["video"].file_id,
        "media": [{"type": "photo", "media": world["photo"].file_id}] * 2,
        "action": "typing",
        "callback_query_id": "123",
        "pre_checkout_query_id": "456",
        "ok": True,
        "file_id": world["photo"].file_id,
        "commands": [{"command": "start", "description": "Начать"}],
        "url": "https://example.com/telegram/webhook/",
        "title": "100 токенов",
        "description": "Пакет",
        "payload": "order:1",
        "currency": "XTR",
        "prices": [{"label": "100", "amount": 50}],
        "user_id": CHAT_ID,
        "telegram_payment_charge_id": "stx-1",
    }
    params = {f["name"]: known[f["name"]] for f in spec.method_fields(method) if f["required"]}
    # Правке нужно существующее сообщение и новое содержимое
    if method == "editMessageText":
        params.update(chat_id=CHAT_ID, message_id=world["text"], text="edited")
    if method == "editMessageReplyMarkup":
        params.update(chat_id=CHAT_ID, message_id=world["text"], reply_markup=keyboard)
    if method == "editMessageCaption":
        params.update(chat_id=CHAT_ID, message_id=world["media"], caption="new caption")
    if method == "deleteMessage":
        params["message_id"] = world["text"]
    return params


def broken(types: list[str]) -> tuple[Any, bool]:
    """Значение не того типа и способ отправки (JSON — единственный способ сломать строку)."""
    if types == ["Integer"] or types == ["Float"]:
        return "not-a-number", False
    if types == ["Boolean"]:
        return "maybe", False
    if types == ["InputFile"]:
        return "not-a-file", False
    if types == ["String"] or "String" in types:
        return {"unexpected": "object"}, True
    if all(t.startswith(spec.ARRAY_PREFIX) for t in types):
        inner = types[0].removeprefix(spec.ARRAY_PREFIX)
        if inner in ("Integer", "String"):
            return [{"unexpected": "object"}], True
        return "[not json", False
    # Объект (или объединение объектов): список вместо объекта
    return "[1, 2]", False


def _cases(kind: str) -> list[Any]:
    cases = []
    for method in BOT_METHODS:
        for field in spec.method_fields(method):
            if kind == "missing" and field["required"]:
                cases.append(pytest.param(method, field["name"], id=f"{method}-{field['name']}"))
            if kind == "type":
                cases.append(
                    pytest.param(method, field["name"], field["types"], id=f"{method}-{field['name']}")
                )
    return cases


@pytest.fixture
def world(db: Any) -> dict[str, Any]:
    return _world()


@pytest.mark.parametrize("method", BOT_METHODS)
def test_a_correct_request_is_accepted(api: SandboxApi, world: dict[str, Any], method: str) -> None:
    reply = api.call(method, baseline(method, world))

    assert reply.status == 200, reply.body
    assert reply.body["ok"] is True


@pytest.mark.parametrize(("method", "field"), _cases("missing"))
@pytest.mark.emulator_violations_expected
def test_a_missing_required_field_is_a_bad_request(
    api: SandboxApi, world: dict[str, Any], method: str, field: str
) -> None:
    params = baseline(method, world)
    params.pop(field)

    reply = api.call(method, params)

    assert reply.status == 400
    assert reply.body == {"ok": False, "error_code": 400, "description": f"Bad Request: {field} is empty"}


@pytest.mark.parametrize(("method", "field", "types"), _cases("type"))
@pytest.mark.emulator_violations_expected
def test_a_field_of_the_wrong_type_is_a_bad_request(
    api: SandboxApi, world: dict[str, Any], method: str, field: str, types: list[str]
) -> None:
    params = baseline(method, world)
    params[field], as_json = broken(types)

    reply = api.call(method, params, as_json=as_json)

    assert reply.status == 400, reply.body
    assert reply.description.startswith("Bad Request: ")
    assert field in reply.description
    assert services.sandbox_calls(method=method)[-1].status == 400


@pytest.mark.emulator_violations_expected
def test_nested_objects_are_checked_against_their_types(api: SandboxApi) -> None:
    no_text = {"inline_keyboard": [[{"callback_data": "x"}]]}
    bad_amount = [{"label": "a", "amount": "ten"}]

    button = api.call("sendMessage", {"chat_id": 1, "text": "hi", "reply_markup": no_text})
    price = api.call(
        "sendInvoice",
        {
            "chat_id": 1,
            "title": "t",
            "description": "d",
            "payload": "p",
            "currency": "XTR",
            "prices": bad_amount,
        },
    )
    media = api.call("sendMediaGroup", {"chat_id": 1, "media": [{"type": "sticker", "media": "x"}] * 2})

    assert button.description == "Bad Request: reply_markup.inline_keyboard[0][0].text is empty"
    assert price.description == 'Bad Request: field "prices[0].amount" must be of type Integer'
    assert media.status == 400
    assert 'unsupported media[0].type "sticker"' in media.description


@pytest.mark.emulator_violations_expected
def test_complex_fields_must_be_valid_json(api: SandboxApi) -> None:
    reply = api.call("sendMessage", {"chat_id": 1, "text": "hi", "reply_markup": "{oops"})

    assert reply.body == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: can't parse reply_markup JSON object",
    }


@pytest.mark.emulator_violations_expected
def test_an_unknown_method_is_not_found_like_telegram(api: SandboxApi) -> None:
    reply = api.call("sendTelepathy", {"chat_id": 1})

    assert reply.status == 404
    assert reply.body == {"ok": False, "error_code": 404, "description": "Not Found"}
    assert services.sandbox_calls(method="sendTelepathy")[0].status == 404


def test_method_names_are_case_insensitive(api: SandboxApi) -> None:
    assert api.call("SENDMESSAGE", {"chat_id": 1, "text": "hi"}).status == 200


def test_get_me_takes_an_empty_body_and_get_requests(api: SandboxApi) -> None:
    empty = api.client.post(api.url("getMe"), data=b"", content_type="application/x-www-form-urlencoded")
    query = api.client.get(api.url("sendMessage"), {"chat_id": "7", "text": "via GET"})

    assert empty.status_code == 200
    assert empty.json()["result"]["is_bot"] is True
    assert query.json()["result"]["text"] == "via GET"


def test_json_bodies_carry_native_types(api: SandboxApi) -> None:
    keyboard = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}

    reply = api.call("sendMessage", {"chat_id": 9, "text": "json", "reply_markup": keyboard}, as_json=True)

    assert reply.result["reply_markup"] == keyboard


@pytest.mark.parametrize("token", ["not-a-token", "123456", "abc:def", "123:"])
@pytest.mark.emulator_violations_expected
def test_a_malformed_token_is_unauthorized(api: SandboxApi, token: str) -> None:
    reply = api.call("getMe", token=token)

    assert reply.status == 401
    assert reply.body == {"ok": False, "error_code": 401, "description": "Unauthorized"}


@pytest.mark.emulator_violations_expected
def test_a_token_other_than_the_configured_one_is_unauthorized(api: SandboxApi) -> None:
    assert api.call("getMe", token="123456:OtherBotTokenNotReal").status == 401


@override_settings(TELEGRAM_BOT_TOKEN="")
def test_without_a_configured_token_any_well_formed_token_works(api: SandboxApi) -> None:
    reply = api.call("getMe", token="987654:AnyTokenWillDo_-")

    assert reply.result["id"] == 987654


@pytest.mark.emulator_violations_expected
def test_the_call_log_never_holds_the_token(api: SandboxApi) -> None:
    api.call("sendMessage", {"chat_id": 1, "text": "hi"})
    api.call("getMe", token="123:bad")

    logged = json.dumps([(c.method, c.params, c.error) for c in services.sandbox_calls()])
    assert api.token not in logged
    assert api.token.split(":")[1] not in logged


@override_settings(TELEGRAM_SANDBOX=False)
def test_the_emulator_answers_nothing_outside_sandbox_mode(api: SandboxApi) -> None:
    reply = api.call("getMe")

    assert reply.status == 404
    assert services.sandbox_calls() == []
