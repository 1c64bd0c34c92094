"""Быстрая подделка Bot API для нагрузочных замеров: отвечает на любой метод сразу.

Эмулятор песочницы проверяет каждый вызов по спецификации и пишет его в БД — для
тестов это нужно, для замера пропускной способности вебхука он сам стал бы узким местом.
Запуск: python bench/fake_bot_api.py PORT   (uvicorn, один процесс)
"""

import itertools
import json
import sys
import time

import uvicorn

_ids = itertools.count(1)
_calls = {"n": 0, "last": 0.0}


def _result(method: str, params: dict) -> object:
    if method == "getMe":
        return {"id": 123, "is_bot": True, "first_name": "Bench", "username": "bench_bot"}
    if method.startswith(("send", "edit")):
        chat = int(params.get("chat_id", 1) or 1)
        return {
            "message_id": next(_ids),
            "date": int(time.time()),
            "chat": {"id": chat, "type": "private"},
            "text": params.get("text", ""),
        }
    return True


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    method = scope["path"].rsplit("/", 1)[-1]
    if method == "_calls":
        # Счётчик для замера: сколько вызовов дошло (эталон отвечает 200 раньше, чем шлёт ответ)
        await _send(send, json.dumps(_calls).encode())
        return
    params = {}
    if body and b"{" in body[:1]:
        params = json.loads(body)
    elif body:
        from urllib.parse import parse_qsl

        params = dict(parse_qsl(body.decode()))
    _calls["n"] += 1
    _calls["last"] = time.time()
    await _send(send, json.dumps({"ok": True, "result": _result(method, params)}).encode())


async def _send(send, payload: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})


if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), log_level="warning", access_log=False)
