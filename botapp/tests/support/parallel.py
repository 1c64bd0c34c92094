"""Параллельный запуск в нескольких ОС-процессах, каждый со своим соединением к PostgreSQL.

Процессы стартуют, открывают соединение и ждут у барьера в Redis; родитель отпускает
всех разом, когда готовы все. Так гонка настоящая: без общего GIL и общего соединения.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from collections.abc import Mapping
from typing import Any

import redis
from django.conf import settings

from botapp.tests.support.processes import ROOT, django_env

CHILD = """
import json, sys
import django
django.setup()
import importlib
import redis
from django.conf import settings
from django.db import connection

module, name = sys.argv[1].split(":")
target = getattr(importlib.import_module(module), name)
kwargs = json.loads(sys.argv[2])
barrier = sys.argv[3]
# Таймаут сокета больше ожидания у барьера: по умолчанию redis-py ждёт ответа 5 с, а двадцать
# процессов на загруженной машине стартуют дольше — BLPOP падал раньше, чем родитель отпускал всех
client = redis.Redis.from_url(settings.REDIS_URL, socket_timeout=90)
connection.ensure_connection()
client.rpush(barrier + ":ready", 1)
if client.blpop([barrier + ":go"], timeout=60) is None:
    sys.exit("barrier timeout")
print(json.dumps(target(**kwargs)))
"""


def run_in_processes(
    target: str, kwargs_list: list[dict[str, Any]], timeout: float = 120, env: Mapping[str, str] | None = None
) -> list[Any]:
    """target — "модуль:функция"; по процессу на элемент kwargs_list; возвращает их результаты.

    env — переменные окружения процессов поверх окружения теста (например, лимиты Telegram).
    """
    barrier = f"{settings.REDIS_KEY_PREFIX}barrier:{uuid.uuid4().hex}"
    client = redis.Redis.from_url(settings.REDIS_URL)
    child_env = django_env(**(env or {}))
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, target, json.dumps(kwargs), barrier],
            cwd=ROOT,
            env=child_env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for kwargs in kwargs_list
    ]
    try:
        deadline = time.monotonic() + timeout
        while client.llen(f"{barrier}:ready") < len(procs):
            if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                raise AssertionError("processes did not reach the barrier")
            time.sleep(0.05)
        client.rpush(f"{barrier}:go", *([1] * len(procs)))
        results = []
        for proc in procs:
            out, err = proc.communicate(timeout=timeout)
            assert proc.returncode == 0, err[-3000:]
            results.append(json.loads(out.strip().splitlines()[-1]))
        return results
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
        client.delete(f"{barrier}:ready", f"{barrier}:go")
