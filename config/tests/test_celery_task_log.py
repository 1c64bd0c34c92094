"""Логгер задач Celery (get_task_logger) вырезает секреты, как и остальные логи.

Celery даёт логгеру celery.task свой обработчик и отключает propagate: фильтр обработчика
root до этих записей не доходит. Проверка — на настоящем воркере с боевой командой.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from botapp.tests.support import processes
from botapp.tests.support.fakes import fake_bot_token

pytestmark = [pytest.mark.django_db, pytest.mark.slow]

PROBE_MODULE = "botapp.tests.support.celery_probe"


def test_a_task_logger_line_with_a_bot_token_is_redacted(tmp_path: Path) -> None:
    token = fake_bot_token()
    # Свой префикс Redis: задачу возьмёт только этот воркер
    env = processes.django_env(REDIS_KEY_PREFIX=f"nbtasklog:{uuid.uuid4().hex[:8]}:", LOG_LEVEL="INFO")
    log = tmp_path / "worker.log"

    def output() -> str:
        return log.read_text(errors="replace")

    command = [*processes.WORKER_COMMAND, "--include", PROBE_MODULE, "--concurrency", "1"]
    with processes.running(command, env, log):
        processes.wait_for(lambda: " ready." in output(), timeout=60, what="worker ready")
        url = f"https://api.telegram.org/bot{token}/sendMessage"
        processes.shell_report(
            env,
            f"from {PROBE_MODULE} import probe_log\nprobe_log.delay({url!r})\nprint('REPORT null')",
        )
        processes.wait_for(lambda: "probe-mp: " in output(), timeout=30, what="probe lines")
    for marker in ("probe: ", "probe-mp: "):
        line = next(row for row in output().splitlines() if marker in row)
        assert "sendMessage" in line
        assert "[REDACTED]" in line
    assert token not in output()
    assert token.split(":")[1] not in output()
