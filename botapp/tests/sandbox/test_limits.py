"""Лимиты Telegram в эмуляторе: длины, callback_data, размеры файлов, правка и разметка."""

from __future__ import annotations

from typing import Any

import pytest
from django.test import override_settings

from botapp.sandbox import files, services
from botapp.sandbox.state import chat_get_or_create
from botapp.tests.sandbox.conftest import SandboxApi, png

pytestmark = [pytest.mark.django_db]

MB = 1024 * 1024


def _send(api: SandboxApi, text: str, **extra: Any) -> Any:
    return api.call("sendMessage", {"chat_id": 11, "text": text, **extra})


def test_text_up_to_4096_characters_is_sent(api: SandboxApi) -> None:
    assert _send(api, "ж" * 4096).status == 200


@pytest.mark.emulator_violations_expected
def test_text_over_4096_characters_is_too_long(api: SandboxApi) -> None:
    reply = _send(api, "ж" * 4097)

    assert reply.body == {"ok": False, "error_code": 400, "description": "Bad Request: message is too long"}


def test_text_length_is_counted_after_html_parsing(api: SandboxApi) -> None:
    reply = _send(api, "<b>" + "a" * 4096 + "</b>", parse_mode="HTML")

    assert reply.result["text"] == "a" * 4096
    assert reply.result["entities"] == [{"type": "bold", "offset": 0, "length": 4096}]


@pytest.mark.emulator_violations_expected
def test_broken_html_is_rejected_like_telegram(api: SandboxApi) -> None:
    unescaped = _send(api, "1 < 2 и 3 > 1", parse_mode="HTML")
    unclosed = _send(api, "<b>жирный", parse_mode="HTML")
    escaped = _send(api, "1 &lt; 2 &amp; <a href='https://t.me'>ссылка</a>", parse_mode="HTML")

    assert unescaped.status == 400
    assert unescaped.description.startswith("Bad Request: can't parse entities: Unsupported start tag")
    assert unclosed.description.startswith("Bad Request: can't parse entities: Can't find end tag")
    assert escaped.result["text"] == "1 < 2 & ссылка"
    assert escaped.result["entities"] == [
        {"type": "text_link", "offset": 8, "length": 6, "url": "https://t.me"}
    ]


def test_entity_offsets_are_in_utf16_units(api: SandboxApi) -> None:
    reply = _send(api, "🎨 <i>Изображение</i>", parse_mode="HTML")

    assert reply.result["entities"] == [{"type": "italic", "offset": 3, "length": 11}]


@pytest.mark.emulator_violations_expected
def test_caption_over_1024_characters_is_too_long(api: SandboxApi) -> None:
    ok = api.call(
        "sendPhoto", {"chat_id": 11, "caption": "к" * 1024}, files={"photo": ("p.png", png(), "image/png")}
    )
    long = api.call(
        "sendPhoto", {"chat_id": 11, "caption": "к" * 1025}, files={"photo": ("p.png", png(), "image/png")}
    )

    assert ok.status == 200
    assert long.description == "Bad Request: message caption is too long"


@pytest.mark.emulator_violations_expected
def test_album_captions_are_limited_too(api: SandboxApi) -> None:
    media = [
        {"type": "photo", "media": "attach://a", "caption": "x" * 1025},
        {"type": "photo", "media": "attach://b"},
    ]
    reply = api.call(
        "sendMediaGroup",
        {"chat_id": 11, "media": media},
        files={"a": ("a.png", png(), "image/png"), "b": ("b.png", png(), "image/png")},
    )

    assert reply.description == "Bad Request: message caption is too long"


@pytest.mark.parametrize(
    ("data", "status"),
    [("x" * 64, 200), ("x" * 65, 400), ("ж" * 32, 200), ("ж" * 33, 400), ("", 400)],
    ids=["64-bytes", "65-bytes", "64-bytes-cyrillic", "66-bytes-cyrillic", "empty"],
)
@pytest.mark.emulator_violations_expected
def test_callback_data_is_limited_to_64_bytes(api: SandboxApi, data: str, status: int) -> None:
    keyboard = {"inline_keyboard": [[{"text": "Go", "callback_data": data}]]}

    reply = _send(api, "hi", reply_markup=keyboard)

    assert reply.status == status
    if status == 400:
        assert reply.description == "Bad Request: BUTTON_DATA_INVALID"


@pytest.mark.emulator_violations_expected
def test_an_inline_button_needs_an_action(api: SandboxApi) -> None:
    reply = _send(api, "hi", reply_markup={"inline_keyboard": [[{"text": "Просто текст"}]]})

    assert reply.status == 400
    assert "Text buttons are unallowed in the inline keyboard" in reply.description


@pytest.mark.emulator_violations_expected
def test_a_photo_over_10_mb_is_refused(api: SandboxApi) -> None:
    big = png(100, 100, padding=10 * MB)

    reply = api.call("sendPhoto", {"chat_id": 11}, files={"photo": ("p.png", big, "image/png")})

    assert reply.description == "Bad Request: PHOTO_SAVE_FILE_INVALID"


def test_the_same_bytes_go_as_a_document(api: SandboxApi) -> None:
    big = png(100, 100, padding=10 * MB)

    reply = api.call("sendDocument", {"chat_id": 11}, files={"document": ("p.png", big, "image/png")})

    assert reply.result["document"]["file_size"] == len(big)


@pytest.mark.emulator_violations_expected
def test_an_upload_over_50_mb_is_too_large(api: SandboxApi) -> None:
    reply = api.call(
        "sendDocument", {"chat_id": 11}, files={"document": ("v.mp4", b"\x00" * (50 * MB + 1), "video/mp4")}
    )

    assert reply.status == 413
    assert reply.description == "Request Entity Too Large"
    assert services.sandbox_messages(chat_id=11) == []


@pytest.mark.emulator_violations_expected
def test_a_photo_must_be_an_image_of_sane_proportions(api: SandboxApi) -> None:
    not_image = api.call("sendPhoto", {"chat_id": 11}, files={"photo": ("p.jpg", b"hello", "image/jpeg")})
    too_thin = api.call("sendPhoto", {"chat_id": 11}, files={"photo": ("p.png", png(2100, 100), "image/png")})
    too_big = api.call("sendPhoto", {"chat_id": 11}, files={"photo": ("p.png", png(6000, 4001), "image/png")})

    assert not_image.description == "Bad Request: IMAGE_PROCESS_FAILED"
    assert too_thin.description == "Bad Request: PHOTO_INVALID_DIMENSIONS"
    assert too_big.description == "Bad Request: PHOTO_INVALID_DIMENSIONS"


@pytest.mark.emulator_violations_expected
def test_get_file_refuses_files_over_20_mb(api: SandboxApi) -> None:
    small = files.file_store(data=b"x" * 100, kind="document", file_name="small.bin")
    big = files.file_store(data=b"x" * (20 * MB + 1), kind="document", file_name="big.bin")

    assert api.call("getFile", {"file_id": small.file_id}).result["file_size"] == 100
    reply = api.call("getFile", {"file_id": big.file_id})

    assert reply.body == {"ok": False, "error_code": 400, "description": "Bad Request: file is too big"}


@pytest.mark.emulator_violations_expected
def test_get_file_knows_only_its_own_ids(api: SandboxApi) -> None:
    assert (
        api.call("getFile", {"file_id": "AgACAgIAAxkBAAInvented"}).description
        == "Bad Request: invalid file_id"
    )


@pytest.mark.parametrize("separator", [":", "%3A"])
def test_files_download_with_the_token_colon_plain_or_encoded(api: SandboxApi, separator: str) -> None:
    stored = files.file_store(
        data=b"%PDF-1.4 test", kind="document", file_name="a.pdf", mime_type="application/pdf"
    )
    token = api.token.replace(":", separator)

    response = api.client.get(f"/sandbox/api/file/bot{token}/{stored.file_path}")

    assert response.status_code == 200
    assert response.content == b"%PDF-1.4 test"
    assert response["Content-Type"] == "application/pdf"


def test_files_do_not_download_with_a_wrong_token(api: SandboxApi) -> None:
    stored = files.file_store(data=b"secret", kind="document", file_name="a.bin")

    response = api.client.get(f"/sandbox/api/file/bot999:wrong/{stored.file_path}")

    assert response.status_code == 401


def test_message_ids_grow_per_chat(api: SandboxApi) -> None:
    ids = [_send(api, "a").result["message_id"], _send(api, "b").result["message_id"]]
    other = api.call("sendMessage", {"chat_id": 12, "text": "c"}).result["message_id"]

    assert ids == [1, 2]
    assert other == 1


@pytest.mark.emulator_violations_expected
def test_a_caption_edit_needs_a_media_message(api: SandboxApi) -> None:
    text_id = _send(api, "text").result["message_id"]
    photo = api.call(
        "sendPhoto", {"chat_id": 11, "caption": "old"}, files={"photo": ("p.png", png(), "image/png")}
    )

    wrong = api.call("editMessageCaption", {"chat_id": 11, "message_id": text_id, "caption": "x"})
    same = api.call(
        "editMessageCaption", {"chat_id": 11, "message_id": photo.result["message_id"], "caption": "old"}
    )
    new = api.call(
        "editMessageCaption", {"chat_id": 11, "message_id": photo.result["message_id"], "caption": "new"}
    )

    assert wrong.description == "Bad Request: there is no caption in the message to edit"
    assert same.description.startswith("Bad Request: message is not modified")
    assert new.result["caption"] == "new"


@pytest.mark.emulator_violations_expected
def test_user_messages_cannot_be_edited_by_the_bot(api: SandboxApi) -> None:
    update = services.sandbox_user_send_text(chat_id=11, text="привет")

    reply = api.call(
        "editMessageText", {"chat_id": 11, "message_id": update["message"]["message_id"], "text": "взлом"}
    )

    assert reply.description == "Bad Request: message can't be edited"


@pytest.mark.emulator_violations_expected
def test_deleting_twice_fails_the_second_time(api: SandboxApi) -> None:
    message_id = _send(api, "удалить").result["message_id"]

    assert api.call("deleteMessage", {"chat_id": 11, "message_id": message_id}).result is True
    again = api.call("deleteMessage", {"chat_id": 11, "message_id": message_id})

    assert again.description == "Bad Request: message to delete not found"


@pytest.mark.emulator_violations_expected
def test_albums_hold_two_to_ten_items_and_keep_documents_apart(api: SandboxApi) -> None:
    photo = files.file_store(data=png(), kind="photo", width=2, height=1)
    document = files.file_store(data=b"doc", kind="document", file_name="a.txt")
    single = api.call("sendMediaGroup", {"chat_id": 11, "media": [{"type": "photo", "media": photo.file_id}]})
    mixed = api.call(
        "sendMediaGroup",
        {
            "chat_id": 11,
            "media": [
                {"type": "photo", "media": photo.file_id},
                {"type": "document", "media": document.file_id},
            ],
        },
    )

    assert single.status == 400
    assert mixed.description == "Bad Request: document can't be mixed with other media types"


@pytest.mark.emulator_violations_expected
def test_a_photo_file_id_is_not_a_document(api: SandboxApi) -> None:
    photo = files.file_store(data=png(), kind="photo", width=2, height=1)

    reply = api.call("sendDocument", {"chat_id": 11, "document": photo.file_id})

    assert reply.status == 400
    assert "can't use file of type Photo as Document" in reply.description


@pytest.mark.emulator_violations_expected
def test_stars_invoices_take_exactly_one_price_and_no_provider(api: SandboxApi) -> None:
    base = {"chat_id": 11, "title": "t", "description": "d", "payload": "p", "currency": "XTR"}
    two = api.call(
        "sendInvoice", {**base, "prices": [{"label": "a", "amount": 1}, {"label": "b", "amount": 1}]}
    )
    provider = api.call(
        "sendInvoice", {**base, "prices": [{"label": "a", "amount": 1}], "provider_token": "tok"}
    )
    fine = api.call("sendInvoice", {**base, "prices": [{"label": "a", "amount": 5}]})

    assert two.description == "Bad Request: STARS_INVOICE_INVALID"
    assert provider.description == "Bad Request: PAYMENT_PROVIDER_INVALID"
    assert fine.result["invoice"] == {
        "title": "t",
        "description": "d",
        "start_parameter": "",
        "currency": "XTR",
        "total_amount": 5,
    }


@pytest.mark.emulator_violations_expected
def test_chat_actions_are_checked(api: SandboxApi) -> None:
    assert api.call("sendChatAction", {"chat_id": 11, "action": "upload_photo"}).result is True
    assert api.call("sendChatAction", {"chat_id": 11, "action": "dancing"}).status == 400


@pytest.mark.emulator_violations_expected
def test_usernames_resolve_only_for_known_chats(api: SandboxApi) -> None:
    chat_get_or_create(31, username="alice")

    assert api.call("sendMessage", {"chat_id": "@alice", "text": "hi"}).result["chat"]["id"] == 31
    assert (
        api.call("sendMessage", {"chat_id": "@nobody", "text": "hi"}).description
        == "Bad Request: chat not found"
    )


@override_settings(TELEGRAM_RATE_PER_CHAT=1.0, TELEGRAM_RATE_OVERALL=10.0)
@pytest.mark.emulator_violations_expected
def test_size_errors_do_not_use_up_the_rate(api: SandboxApi) -> None:
    for _ in range(5):
        assert _send(api, "ж" * 5000).status == 400

    assert [_send(api, "ok").status for _ in range(4)] == [200, 200, 200, 429]
