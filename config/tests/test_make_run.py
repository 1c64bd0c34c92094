"""`make run` в чистой копии с пустым окружением: здоровье `ok`, затем Ctrl-C гасит всё."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from botapp.tests.support.processes import ROOT, free_port, group_alive, wait_for

pytestmark = pytest.mark.slow


def _copy_tree(dest: Path) -> None:
    """Копия рабочего дерева: отслеживаемые и новые неигнорируемые файлы, как в свежем клоне."""
    listed = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, capture_output=True, check=True,
    ).stdout.decode()  # fmt: skip
    for name in filter(None, listed.split("\0")):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)


def _health(base: str) -> dict[str, object] | None:
    try:
        return httpx.get(f"{base}/api/health", timeout=2).json()  # type: ignore[no-any-return]
    except (httpx.HTTPError, ValueError):
        return None


def _port_closed(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def test_make_run_serves_health_ok_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    clone = tmp_path / "clone"
    _copy_tree(clone)
    port = free_port()
    env = {
        "PATH": "/usr/local/bin:/usr/bin:/bin",
        "VENV": sys.prefix,
        "PORT": str(port),
        "HOME": str(tmp_path),
    }
    log = (tmp_path / "make-run.log").open("wb")
    proc = subprocess.Popen(
        ["make", "run"], cwd=clone, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    base = f"http://127.0.0.1:{port}"
    reports: list[dict[str, object]] = []

    def healthy() -> bool:
        report = _health(base)
        if report:
            reports.append(report)
        return bool(report and report["status"] == "ok")

    try:
        wait_for(healthy, timeout=120, interval=1, what="make run health ok")
        report: Any = reports[-1]
        assert report["checks"]["workers"]["status"] == "ok"
        assert report["checks"]["beat"]["status"] == "ok"
        assert set(report["embedded_defaults"]) >= {"database", "broker", "storage", "telegram"}
        # Ctrl-C в терминале = SIGINT всей группе процессов переднего плана
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=60)
        wait_for(lambda: not group_alive(proc.pid), timeout=30, what="every process of the group to exit")
        assert _port_closed(port)
    except BaseException:
        log.flush()
        print((tmp_path / "make-run.log").read_text(errors="replace")[-6000:])
        if group_alive(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        raise


def test_make_run_starts_the_worker_and_beat_with_the_production_commands() -> None:
    """`make run` и тесты запускают воркер и beat ровно так, как CMD их Dockerfile."""
    sys.path.insert(0, str(ROOT / "scripts"))
    try:
        import run_local
    finally:
        sys.path.remove(str(ROOT / "scripts"))
    from botapp.tests.support.processes import BEAT_COMMAND, WORKER_COMMAND

    assert run_local.COMMANDS["worker"] == WORKER_COMMAND
    assert run_local.COMMANDS["beat"] == BEAT_COMMAND
    assert "--without-mingle" in WORKER_COMMAND
