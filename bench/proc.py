"""Общее для бенчмарков: свободный порт, процессы в своей группе (запуск, остановка), деревья процессов."""

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


def tree_pids(pid):
    """Процесс и все его живые потомки (по /proc/<pid>/task/<pid>/children)."""
    found, stack = [], [pid]
    while stack:
        current = stack.pop()
        try:
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found.append(current)
        stack.extend(int(c) for c in children)
    return found


def tree_sum(pid, read):
    """Сумма read(pid) по дереву; процесс, ушедший между обходом и чтением, не в счёт."""
    total = 0
    for current in tree_pids(pid):
        try:
            total += read(current)
        except (FileNotFoundError, ProcessLookupError, PermissionError):
            continue
    return total


def proc_kb(pid, path, field):
    """Поле в кБ из /proc/<pid>/<path> (status: VmRSS, smaps_rollup: Pss); нет поля — 0."""
    for line in Path(f"/proc/{pid}/{path}").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    return 0
