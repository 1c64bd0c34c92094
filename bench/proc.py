"""Общее для бенчмарков: свободный порт и процессы в своей группе (запуск, остановка)."""

import os
import signal
import socket
import subprocess
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start(command, env):
    return subprocess.Popen(
        command,
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )


def stop(proc):
    """SIGTERM всей группе, через 20 с — SIGKILL: после замера не остаётся ни одного процесса."""
    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)


@contextmanager
def process(command, env):
    proc = start(command, env)
    try:
        yield proc
    finally:
        stop(proc)
