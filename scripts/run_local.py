"""`make run`: web + worker (все очереди) + beat в одном терминале.

Один Ctrl-C останавливает всё: дети в той же группе процессов получают SIGINT
сами, а если кто-то не вышел за отведённое время — добиваем SIGTERM/SIGKILL.
Если один процесс упал, останавливаем остальные: полурабочий сервис хуже.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from config import env

BIN = Path(sys.executable).parent
COMMANDS = {
    "web": [
        str(BIN / "uvicorn"), "config.asgi:application",
        "--host", "127.0.0.1", "--port", str(env.PORT), "--no-access-log",
    ],
    "worker": [
        str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO",
        "--without-mingle", "--without-gossip",
    ],
    "beat": [
        str(BIN / "celery"), "-A", "config", "beat", "--loglevel=INFO",
        "--scheduler", "django_celery_beat.schedulers:DatabaseScheduler",
    ],
}  # fmt: skip
GRACE_S = 15.0
_print_lock = threading.Lock()


def _pump(name: str, proc: subprocess.Popen[bytes]) -> None:
    assert proc.stdout is not None
    for raw in proc.stdout:
        with _print_lock:
            sys.stdout.write(f"{name:<6}| {raw.decode(errors='replace')}")
            sys.stdout.flush()


def _stop(procs: dict[str, subprocess.Popen[bytes]], sig: int) -> None:
    for proc in procs.values():
        if proc.poll() is None:
            proc.send_signal(sig)


def main() -> int:
    if env.TELEGRAM_BOT_TOKEN and not env.TELEGRAM_SANDBOX:
        # Режим вебхука (ARCHITECTURE §7): команды публикуются при старте, setWebhook — только вручную
        subprocess.run([sys.executable, "manage.py", "publish_commands"], check=True)
    stopping = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    procs: dict[str, subprocess.Popen[bytes]] = {}
    for name, command in COMMANDS.items():
        procs[name] = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # noqa: S603
        threading.Thread(target=_pump, args=(name, procs[name]), daemon=True).start()
    print(f"run   | http://127.0.0.1:{env.PORT}/  (Ctrl-C stops web, worker and beat)", flush=True)
    failed = ""
    while not stopping.is_set():
        failed = next((name for name, proc in procs.items() if proc.poll() is not None), "")
        if failed:
            print(f"run   | {failed} exited with {procs[failed].returncode}; stopping the rest", flush=True)
            break
        stopping.wait(0.5)
    # Ctrl-C в терминале уже доставил SIGINT всей группе; kill/SIGTERM — нет, поэтому шлём сами
    _stop(procs, signal.SIGINT)
    deadline = time.monotonic() + GRACE_S
    while time.monotonic() < deadline and any(p.poll() is None for p in procs.values()):
        time.sleep(0.2)
    _stop(procs, signal.SIGKILL)
    for proc in procs.values():
        proc.wait()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
