"""Свой redis-server на свободном порту: тест может уронить и поднять брокер, не трогая общий Redis."""

from __future__ import annotations

import shutil
import signal
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from botapp.tests.support import processes


class RedisServer:
    """Без снимков и AOF: перезапуск теряет всё, как упавший Redis без персистентности."""

    def __init__(self, data_dir: Path, port: int) -> None:
        self.data_dir = data_dir
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        binary = shutil.which("redis-server")
        assert binary, "redis-server is not installed"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        command = [
            binary, "--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.data_dir),
            "--save", "", "--appendonly", "no", "--protected-mode", "no",
        ]  # fmt: skip
        with (self.data_dir / "redis.log").open("ab") as log:
            self.proc = subprocess.Popen(
                command, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        processes.wait_for(self.ping, timeout=15, what="redis-server")

    def ping(self) -> bool:
        try:
            return bool(redis.Redis(port=self.port, socket_timeout=1).ping())
        except redis.RedisError:
            return False

    def kill(self) -> None:
        """Падение без сохранения: все очереди и неподтверждённые сообщения пропадают."""
        if self.proc is not None:
            processes.stop_group(self.proc, signal.SIGKILL, timeout=5)
            self.proc = None

    def restart(self) -> None:
        self.kill()
        self.start()


@contextmanager
def redis_server(data_dir: Path) -> Iterator[RedisServer]:
    server = RedisServer(data_dir, processes.free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()
