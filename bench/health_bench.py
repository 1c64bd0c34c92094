"""Нагрузка на /api/health: p50/p99 при 50 параллельных запросах, с зависшей зависимостью и без.

Сервер — боевой командой (gunicorn + uvicorn_worker), воркер и beat Celery — тоже.
Базовая линия в том же прогоне — /api/health/live (без зависимостей).
Запуск: .venv/bin/python bench/health_bench.py [--requests 2000] [--concurrency 50]
Печатает JSON и пишет его в bench/results/health.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from pathlib import Path

import httpx
from proc import free_port, process

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


@contextmanager
def hung_listener():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(512)
    held, stop = [], threading.Event()

    def accept():
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield server.getsockname()[1]
    finally:
        stop.set()
        for conn in held:
            conn.close()
        server.close()


def wait_http(url, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            httpx.get(url, timeout=1)
            return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"server at {url} did not start")


async def load(url, total, concurrency):
    latencies, statuses = [], {}
    queue = asyncio.Queue()
    for _ in range(total):
        queue.put_nowait(None)
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(timeout=10, limits=limits) as client:

        async def worker():
            while not queue.empty():
                queue.get_nowait()
                started = time.perf_counter()
                try:
                    status = (await client.get(url)).status_code
                except httpx.HTTPError as exc:
                    status = type(exc).__name__
                latencies.append((time.perf_counter() - started) * 1000)
                statuses[str(status)] = statuses.get(str(status), 0) + 1

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    pick = lambda q: round(latencies[min(len(latencies) - 1, int(q * len(latencies)))], 1)  # noqa: E731
    return {
        "requests": total,
        "rps": round(total / elapsed, 1),
        "p50_ms": pick(0.50),
        "p99_ms": pick(0.99),
        "max_ms": round(latencies[-1], 1),
        "statuses": statuses,
    }


def scenario(name, env, args, with_celery):
    port = free_port()
    web = [
        str(BIN / "gunicorn"),
        "config.asgi:application",
        "-k",
        "uvicorn_worker.UvicornWorker",
        "--bind",
        f"127.0.0.1:{port}",
        "--workers",
        "2",
        "--keep-alive",
        "75",
    ]
    worker = [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=WARNING"]
    beat = [
        str(BIN / "celery"),
        "-A",
        "config",
        "beat",
        "--loglevel=WARNING",
        "--scheduler",
        "django_celery_beat.schedulers:DatabaseScheduler",
    ]
    base = f"http://127.0.0.1:{port}"
    with process(web, env):
        procs = [process(worker, env), process(beat, env)] if with_celery else []
        for p in procs:
            p.__enter__()
        try:
            wait_http(f"{base}/api/health/live")
            time.sleep(8 if with_celery else 1)  # первый пульс воркера и тик beat
            first = httpx.get(f"{base}/api/health", timeout=10).json()["status"]
            result = {
                "scenario": name,
                "health_status": first,
                "baseline_live": asyncio.run(
                    load(f"{base}/api/health/live", args.requests, args.concurrency)
                ),
                "health": asyncio.run(load(f"{base}/api/health", args.requests, args.concurrency)),
            }
            result["p99_ratio_to_live"] = round(
                result["health"]["p99_ms"] / max(result["baseline_live"]["p99_ms"], 0.1), 2
            )
            return result
        finally:
            for p in reversed(procs):
                p.__exit__(None, None, None)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    args = parser.parse_args()
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"],
        cwd=ROOT,
        check=True,
        env={**os.environ, "DATABASE_URL": args.database_url},
    )
    common = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "REDIS_KEY_PREFIX": f"nbbench{os.getpid()}:",
        "LOG_LEVEL": "WARNING",
    }
    healthy = {**common, "DATABASE_URL": args.database_url, "REDIS_URL": args.redis_url}
    results = [scenario("all dependencies up", healthy, args, with_celery=True)]
    with hung_listener() as port:
        results.append(
            scenario(
                "database hangs",
                {**healthy, "DATABASE_URL": f"postgres://postgres@127.0.0.1:{port}/test"},
                args,
                with_celery=False,
            )
        )
        results.append(
            scenario(
                "broker hangs",
                {**healthy, "REDIS_URL": f"redis://127.0.0.1:{port}/15"},
                args,
                with_celery=False,
            )
        )
    report = {
        "benchmark": "health",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "server": "gunicorn -k uvicorn_worker.UvicornWorker --workers 2 --keep-alive 75",
        "concurrency": args.concurrency,
        "results": results,
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    (ROOT / "bench" / "results").mkdir(exist_ok=True)
    (ROOT / "bench" / "results" / "health.json").write_text(text + "\n")


if __name__ == "__main__":
    main()
