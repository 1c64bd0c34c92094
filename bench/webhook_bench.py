"""Вебхук под нагрузкой против эталонного эхо-бота PTB в том же прогоне (задача о Telegram).

Сервер — боевой командой (gunicorn + uvicorn_worker, 2 воркера), PostgreSQL, Redis;
Bot API — bench/fake_bot_api.py. Эталон — bench/ptb_echo_baseline.py с тем же Bot API.
Нагрузка — bench/closed_loop.py и bench/open_loop.py (одинаковый набор апдейтов, 5 % дублей).
TELEGRAM_RATE_* подняты: меряется вебхук, а не лимиты Telegram (так и записано в JSON).
CPU на апдейт: utime+stime (с детьми) деревьев процессов — gunicorn, postmaster, redis-server,
подделка Bot API, нагрузчик — и всей машины (/proc/stat) до и после каждой фазы. Пропускная
способность на 2 общих ядрах — это 1 / CPU машины на апдейт, и CPU почти не зависит от чужой
нагрузки на машине, в отличие от апдейтов/с: решения принимать по нему.
Запуск: .venv/bin/python bench/webhook_bench.py [-n 5000] [--seconds 60]; пишет bench/results/webhook.json
(--skip-baseline и --out — для коротких прогонов при отладке)
"""

import argparse
import json
import os
import platform
import resource
import socket
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
from proc import free_port, proc_kb, start, stop, tree_sum

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
TOKEN = "123:ABC"  # токен эталонного бота; подделка Bot API принимает любой
SECRET = "s3cret"  # pragma: allowlist secret
RAISED = {
    "TELEGRAM_RATE_OVERALL": "100000",
    "TELEGRAM_RATE_PER_CHAT": "100000",
    "TELEGRAM_RATE_PER_GROUP": "100000",
}


def wait_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


def warm_up(url, timeout=120):
    """Дождаться, пока воркеры прогреются (lifespan: PTB, getMe) и ответят 200.

    Порт слушает мастер gunicorn с самого начала, а на занятой машине воркер стартует
    дольше таймаута httpx по умолчанию (5 с).
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            response = httpx.post(
                url,
                json={"update_id": 1, "warmup": {}},
                headers={"X-Telegram-Bot-Api-Secret-Token": SECRET},
                timeout=30,
            )
            if response.status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit("webhook did not answer 200 after start")
        time.sleep(0.5)


_CLK_TCK = os.sysconf("SC_CLK_TCK")


def _proc_stat(pid):
    """(ppid, utime+stime+cutime+cstime в тиках) из /proc/<pid>/stat, поля 4 и 14–17."""
    text = Path(f"/proc/{pid}/stat").read_text()
    fields = text[text.rindex(")") + 2 :].split()  # имя процесса может содержать пробелы и скобки
    return int(fields[1]), sum(int(value) for value in fields[11:15])


def _processes():
    """{pid: (ppid, тики, comm, cmdline)} всех живых процессов."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            ppid, ticks = _proc_stat(entry.name)
            comm = (entry / "comm").read_text().strip()
            cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except (OSError, ValueError):
            continue  # процесс успел завершиться
        table[int(entry.name)] = (ppid, ticks, comm, cmdline)
    return table


def _tree_ms(table, roots):
    """CPU деревьев процессов, мс: корни и все потомки; завершённые дети — в cutime/cstime родителя."""
    children = {}
    for pid, (ppid, *_rest) in table.items():
        children.setdefault(ppid, []).append(pid)
    total, stack, seen = 0, list(roots), set()
    while stack:
        pid = stack.pop()
        if pid in seen or pid not in table:
            continue
        seen.add(pid)
        total += table[pid][1]
        stack.extend(children.get(pid, ()))
    return total * 1000 / _CLK_TCK


def _machine_ms():
    """Занятое CPU всей машины, мс (всё, кроме idle и iowait)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(values) - values[3] - values[4]) * 1000 / _CLK_TCK


class CpuMeter:
    """Снимки CPU по компонентам; компоненты — корни деревьев процессов."""

    def __init__(self, components, redis_port):
        self.components = dict(components)
        table = _processes()
        # postmaster — процесс postgres, чей родитель не postgres; redis — тот, что слушает порт REDIS_URL
        self.components["postgres"] = [
            pid
            for pid, (ppid, _t, comm, _c) in table.items()
            if comm == "postgres" and table.get(ppid, (0, 0, ""))[2] != "postgres"
        ]
        self.components["redis"] = [
            pid
            for pid, (_p, _t, comm, cmd) in table.items()
            if comm == "redis-server" and f":{redis_port}" in cmd
        ]

    def snapshot(self):
        table = _processes()
        shot = {name: _tree_ms(table, roots) for name, roots in self.components.items()}
        # Нагрузчик — дочерний процесс этого скрипта, уже завершённый: его CPU в RUSAGE_CHILDREN
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)
        shot["loader"] = (usage.ru_utime + usage.ru_stime) * 1000
        shot["machine"] = _machine_ms()
        # Вытеснения нагрузчика: чем чаще просыпаются чужие потоки на тех же ядрах, тем дороже
        # обходится ему каждый апдейт (кэши остывают) — отсюда разница CPU нагрузчика у эталона и у нас
        shot["loader_preemptions"] = usage.ru_nivcsw
        return shot

    @staticmethod
    def per_update(before, after, updates):
        result = {name: round((after[name] - before[name]) / updates, 3) for name in after}
        preemptions = result.pop("loader_preemptions")
        known = sum(value for name, value in result.items() if name != "machine")
        result["other"] = round(result["machine"] - known, 3)
        result["loader_preemptions"] = preemptions
        return result


def rss_mb(master_pid):
    """Суммарный RSS рабочих процессов gunicorn (дерево мастера без него самого), МБ."""
    rss = tree_sum(master_pid, lambda pid: proc_kb(pid, "status", "VmRSS:"))
    return round((rss - proc_kb(master_pid, "status", "VmRSS:")) / 1024, 1)


def bot_api_calls(api_base):
    """Счётчик подделки Bot API: сколько вызовов дошло и когда последний."""
    return httpx.get(f"{api_base}/_calls", timeout=10).json()


def settled_calls(api_base, quiet=1.0, limit=60.0):
    """Ждёт, пока вызовы Bot API перестанут приходить: эталон отвечает 200 до обработки,
    и работа, не сделанная к концу нагрузки, должна войти в замер."""
    last = bot_api_calls(api_base)
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        time.sleep(quiet)
        now = bot_api_calls(api_base)
        if now["n"] == last["n"]:
            break
        last = now
    return last


def load(kind, url, args, meter, api_base):
    if kind == "closed":
        command = [
            sys.executable,
            "bench/closed_loop.py",
            url,
            "-n",
            str(args.n),
            "-c",
            "40",
            "--dup",
            "0.05",
        ]
    else:
        command = [
            sys.executable,
            "bench/open_loop.py",
            url,
            "--rate",
            "50",
            "--seconds",
            str(args.seconds),
            "--dup",
            "0.05",
        ]
    calls_before, started = bot_api_calls(api_base), time.time()
    before = meter.snapshot()
    out = subprocess.run([*command, "--secret", SECRET], cwd=ROOT, capture_output=True, text=True, check=True)
    at_last_ack = bot_api_calls(api_base)
    calls_after = settled_calls(api_base)
    after = meter.snapshot()
    result = json.loads(out.stdout.strip().splitlines()[-1])
    updates = result["n"] if kind == "closed" else result["sent"]
    # Работа, а не только подтверждения: вызовы Bot API на апдейт (эталон не отвечает на нажатия
    # кнопок — четверть смеси) и вызовы, пришедшие уже после последнего 200 (отложенная обработка)
    result["bot_api_calls_per_update"] = round((calls_after["n"] - calls_before["n"]) / updates, 3)
    result["bot_api_calls_after_last_ack"] = calls_after["n"] - at_last_ack["n"]
    if kind == "closed":
        result["last_bot_api_call_s"] = round(calls_after["last"] - started, 2)
    cpu = CpuMeter.per_update(before, after, updates)
    result["loader_preemptions_per_update"] = cpu.pop("loader_preemptions")
    result["cpu_ms_per_update"] = cpu
    return result


def inbox_rows(env, since_ms):
    """Дубликаты обработаны один раз: по строке на update_id (UNIQUE), каждая обработана и взята
    в работу ровно однажды (attempts == 1: повтор не перехватил её у первой копии)."""
    code = (
        "import django, json; django.setup(); from botapp.models import InboxUpdate; "
        f"rows = InboxUpdate.objects.filter(update_id__gte={since_ms}); "
        "print(json.dumps({'rows': rows.count(), 'done': rows.filter(status='done').count(), "
        "'taken_more_than_once': rows.filter(attempts__gt=1).count()}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("-n", type=int, default=5000)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/test")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--skip-baseline", action="store_true", help="только наш сервер (отладка)")
    parser.add_argument("--worker-class", default="uvicorn_worker.UvicornWorker")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--out", default=str(ROOT / "bench" / "results" / "webhook.json"))
    args = parser.parse_args()
    redis_port = urlsplit(args.redis_url).port or 6379

    api_port, web_port, echo_port = free_port(), free_port(), free_port()
    api = start([sys.executable, "bench/fake_bot_api.py", str(api_port)], os.environ.copy())
    wait_port(api_port)
    api_base = f"http://127.0.0.1:{api_port}"
    env = {
        "PATH": os.environ["PATH"],
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "REDIS_KEY_PREFIX": f"nbbench{os.getpid()}:",
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TG_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": api_base,
        **RAISED,
    }
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    results = {}
    try:
        # Эталон: голый эхо-бот PTB на собственном сервере (tornado)
        if not args.skip_baseline:
            echo = start(
                [sys.executable, "bench/ptb_echo_baseline.py", api_base, str(echo_port)], os.environ.copy()
            )
            wait_port(echo_port)
            echo_url = f"http://127.0.0.1:{echo_port}/tg"
            meter = CpuMeter({"bot": [echo.pid], "bot_api": [api.pid]}, redis_port)
            results["baseline"] = {
                "closed": load("closed", echo_url, args, meter, api_base),
                "open": load("open", echo_url, args, meter, api_base),
            }
            stop(echo)

        web = start(
            [
                str(BIN / "gunicorn"),
                "config.asgi:application",
                "-k",
                args.worker_class,
                "--bind",
                f"127.0.0.1:{web_port}",
                "--workers",
                str(args.workers),
                "--keep-alive",
                "75",
            ],
            env,
        )
        wait_port(web_port)
        url = f"http://127.0.0.1:{web_port}/telegram/webhook/"
        warm_up(url)
        since = int(time.time() * 1000) % 10**9 * 1000 - 10**6
        rss_before = rss_mb(web.pid)
        meter = CpuMeter({"web": [web.pid], "bot_api": [api.pid]}, redis_port)
        project = {
            "closed": load("closed", url, args, meter, api_base),
            "open": load("open", url, args, meter, api_base),
        }
        project["rss_mb_before"], project["rss_mb_after"] = rss_before, rss_mb(web.pid)
        project["inbox_after_run"] = inbox_rows(env, since)
        results["project"] = project
        stop(web)
    finally:
        stop(api)
    proj = results["project"]
    if args.skip_baseline:
        text = json.dumps(results, indent=2, ensure_ascii=False)
        print(text)
        Path(args.out).write_text(text + "\n")
        return
    base = results["baseline"]
    report = {
        "benchmark": "webhook",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "note": "TELEGRAM_RATE_* raised to 100000 for this run; Bot API = bench/fake_bot_api.py; 5% dups",
        "server": f"gunicorn -k {args.worker_class} --workers {args.workers} --keep-alive 75; "
        "PostgreSQL; Redis",
        "results": results,
        "ratios": {
            "closed_throughput_vs_baseline": round(
                proj["closed"]["updates_per_s"] / base["closed"]["updates_per_s"], 2
            ),
            "open_p99_ms": proj["open"]["p99_ms"],
            "open_p99_vs_baseline": round(proj["open"]["p99_ms"] / max(base["open"]["p99_ms"], 0.1), 2),
            "closed_machine_cpu_per_update_vs_baseline": round(
                proj["closed"]["cpu_ms_per_update"]["machine"]
                / base["closed"]["cpu_ms_per_update"]["machine"],
                2,
            ),
        },
    }
    text = json.dumps(report, indent=2, ensure_ascii=False)
    print(text)
    Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
