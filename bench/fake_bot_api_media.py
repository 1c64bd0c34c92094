"""Подделка Bot API для замеров генерации: медиа (multipart), журнал времени вызовов, лимиты Telegram.

Отличия от bench/fake_bot_api.py: разбирает multipart (sendPhoto/sendDocument/sendVideo),
отвечает объектами с photo/document/video (доставка берёт из них file_id), отдаёт getFile и
сам файл, записывает время прихода каждого вызова и по желанию соблюдает лимиты Telegram
(сообщения: общий в секунду, личный чат, группа) — сверх лимита 429 с retry_after.

Журнал: GET /_calls → [[время, метод, chat_id, код, признак]], POST /_reset — очистить.
Признак: "status" — сообщение с кнопкой отмены задания (статус), иначе первые символы текста.
Запуск: python bench/fake_bot_api_media.py PORT [--overall 30 --per-chat 1 --per-group 20]
"""

import argparse
import itertools
import json
import math
import time
from collections import deque
from urllib.parse import parse_qsl

import uvicorn

# Те же методы, что считает лимитами бот (botapp/telegram/sender.py: LIMITED_METHODS)
LIMITED = frozenset(
    {
        "sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendAnimation", "sendMediaGroup",
        "sendInvoice", "copyMessage", "forwardMessage", "editMessageText", "editMessageCaption",
        "editMessageMedia", "editMessageReplyMarkup",
    }
)  # fmt: skip
# Маленький настоящий PNG 1×1 — ответ на скачивание файла
PNG_1X1 = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"  # pragma: allowlist secret
)

_ids = itertools.count(1)
_files = itertools.count(1)
_calls: list[list] = []
_limits = {"overall": 0.0, "per_chat": 0.0, "per_group": 0.0}
_window: deque[float] = deque()  # времена разрешённых сообщений за последнюю секунду
_tat: dict[str, float] = {}  # GCRA по чатам: теоретическое время следующего сообщения


def _multipart(body: bytes, content_type: str) -> dict:
    """Поля формы без файлов; у файла — только имя поля (содержимое не нужно)."""
    boundary = content_type.split("boundary=", 1)[1].split(";")[0].strip().strip('"').encode()
    params = {}
    for part in body.split(b"--" + boundary):
        head, sep, value = part.partition(b"\r\n\r\n")
        if not sep:
            continue
        disposition = next(
            (h for h in head.split(b"\r\n") if h.lower().startswith(b"content-disposition")), b""
        )
        if b'name="' not in disposition:
            continue
        name = disposition.split(b'name="', 1)[1].split(b'"', 1)[0].decode()
        if b"filename=" in disposition:
            params[name] = "<file>"
            continue
        params[name] = value.removesuffix(b"\r\n").decode("utf-8", "replace")
    return params


def _check_rate(chat) -> float:
    """0 — можно; иначе через сколько секунд (как Telegram: не меньше 1)."""
    now = time.monotonic()
    wait = 0.0
    if _limits["overall"]:
        while _window and _window[0] <= now - 1.0:
            _window.popleft()
        if len(_window) >= _limits["overall"]:
            wait = max(wait, _window[0] + 1.0 - now)
    key, interval = None, 0.0
    if chat is not None:
        group = str(chat).startswith("-")
        rate = _limits["per_group"] / 60.0 if group else _limits["per_chat"]
        if rate:
            key, interval = str(chat), 1.0 / rate
    if key is not None:
        # GCRA с всплеском 3 сообщения, как допускает Telegram
        tat = max(_tat.get(key, now), now)
        if tat - 2 * interval > now:
            wait = max(wait, tat - 2 * interval - now)
    if wait > 0:
        return wait
    if _limits["overall"]:
        _window.append(now)
    if key is not None:
        _tat[key] = max(_tat.get(key, now), now) + interval
    return 0.0


def _message(chat, params: dict, method: str) -> dict:
    message = {
        "message_id": next(_ids),
        "date": int(time.time()),
        "chat": {"id": chat, "type": "group" if str(chat).startswith("-") else "private"},
    }
    if "text" in params:
        message["text"] = params["text"]
    if "caption" in params:
        message["caption"] = params["caption"]
    n = next(_files)
    if method == "sendPhoto":
        message["photo"] = [
            {"file_id": f"ph{n}s", "file_unique_id": f"ups{n}", "width": 90, "height": 90},
            {"file_id": f"ph{n}", "file_unique_id": f"up{n}", "width": 1024, "height": 1024},
        ]
    elif method == "sendDocument":
        message["document"] = {"file_id": f"doc{n}", "file_unique_id": f"ud{n}", "file_name": "x.png"}
    elif method == "sendVideo":
        message["video"] = {
            "file_id": f"vid{n}",
            "file_unique_id": f"uv{n}",
            "width": 320,
            "height": 180,
            "duration": 4,
        }
    return message


def _result(method: str, params: dict) -> object:
    if method == "getMe":
        return {"id": 123, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
    if method == "getFile":
        file_id = params.get("file_id", "f")
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_size": 68,
            "file_path": "photos/f.png",
        }
    if method == "sendMediaGroup":
        chat = int(params.get("chat_id", 1) or 1)
        media = json.loads(params.get("media", "[]"))
        return [_message(chat, {}, "sendPhoto") for _ in media]
    if method.startswith(("send", "edit", "copy", "forward")) and method != "sendChatAction":
        chat = int(params.get("chat_id", 1) or 1)
        return _message(chat, params, method)
    return True


async def _reply(send, status: int, payload: bytes, content_type: bytes = b"application/json") -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type), (b"content-length", str(len(payload)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": payload})


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    arrived = time.time()
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    path = scope["path"]
    if path == "/_calls":
        return await _reply(send, 200, json.dumps(_calls).encode())
    if path == "/_reset":
        _calls.clear()
        _window.clear()
        _tat.clear()
        return await _reply(send, 200, b"{}")
    if path.startswith("/file/"):
        return await _reply(send, 200, PNG_1X1, b"image/png")
    headers = dict(scope["headers"])
    content_type = headers.get(b"content-type", b"").decode()
    method = path.rsplit("/", 1)[-1]
    params = {}
    if content_type.startswith("multipart/form-data"):
        params = _multipart(body, content_type)
    elif body[:1] == b"{":
        params = json.loads(body)
    elif body:
        params = dict(parse_qsl(body.decode()))
    chat = params.get("chat_id")
    tag = "status" if "job:x:" in str(params.get("reply_markup", "")) else str(params.get("text", ""))[:24]
    if method in LIMITED:
        wait = _check_rate(chat)
        if wait > 0:
            retry_after = max(1, math.ceil(wait))
            _calls.append([arrived, method, chat, 429, tag])
            payload = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return await _reply(send, 429, json.dumps(payload).encode())
    _calls.append([arrived, method, chat, 200, tag])
    payload = json.dumps({"ok": True, "result": _result(method, params)}).encode()
    await _reply(send, 200, payload)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("port", type=int)
    parser.add_argument(
        "--overall", type=float, default=0, help="сообщений в секунду на бота; 0 — без лимита"
    )
    parser.add_argument("--per-chat", type=float, default=0, help="сообщений в секунду в личный чат")
    parser.add_argument("--per-group", type=float, default=0, help="сообщений в минуту в группу")
    args = parser.parse_args()
    _limits.update(overall=args.overall, per_chat=args.per_chat, per_group=args.per_group)
    uvicorn.run(app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
