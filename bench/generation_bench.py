"""Конвейер генерации под нагрузкой: вебхук → задание → воркер → фото/видео в эмуляторе Bot API.

Состав — как в production: gunicorn -k uvicorn_worker.UvicornWorker (2 процесса), Celery боевой
командой `celery -A config worker` (CELERY_WORKER_CONCURRENCY=2), PostgreSQL (своя база
bench_generation), Redis (свой префикс nbbenchgen:), Bot API — bench/fake_bot_api_media.py
(пишет время прихода каждого вызова, по желанию соблюдает лимиты Telegram и отвечает 429).
Пользователи заранее пополнены через журнал (корректировка) и с skip_confirmation=True:
один текстовый апдейт = одно задание. После каждого прогона — сверка журнала и проверка,
что доставлено всё.

  image: 1) мгновенный офлайн-провайдер (GEMINI_OFFLINE_LATENCY_S=0), TELEGRAM_RATE_* подняты,
            --jobs заданий открытой нагрузкой --rate апдейтов/с;
         2) лимиты Telegram по умолчанию (30/с, 1/с в чат), эмулятор их соблюдает: отправок/с и 429;
         базовая линия в том же прогоне — голый sendPhoto в эмулятор из одного asyncio-клиента.
  video: --jobs одновременных Veo-заданий у поддельного Gemini с [after:60], один воркер (2 процесса),
         VIDEO_POLL_INTERVAL_S=10; срок — 60 с + 2 интервала после последней отправки; RSS воркера.

    .venv/bin/python bench/generation_bench.py image [--jobs 1000 --rate 50 --default-jobs 300]
    .venv/bin/python bench/generation_bench.py video [--jobs 1000 --after 60 --poll 10]
Пишет bench/results/generation.json или bench/results/video.json.
"""

import argparse
import asyncio
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
from proc import free_port, proc_kb, tree_sum

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
BIN = Path(sys.executable).parent
TOKEN = "123:ABC"
SECRET = "s3cret"  # pragma: allowlist secret
PREFIX = "nbbenchgen:"
RAISED = {
    "TELEGRAM_RATE_OVERALL": "100000",
    "TELEGRAM_RATE_PER_CHAT": "100000",
    "TELEGRAM_RATE_PER_GROUP": "100000",
}
DEFAULT_RATES = {
    "TELEGRAM_RATE_OVERALL": "30",
    "TELEGRAM_RATE_PER_CHAT": "1",
    "TELEGRAM_RATE_PER_GROUP": "20",
}
LIMITED = {"sendMessage", "sendPhoto", "sendDocument", "sendVideo", "sendMediaGroup", "editMessageText"}
RETRIES = [0]  # повторы POST после обрыва соединения сервером
TERMINAL = ("delivered", "failed", "expired", "cancelled")


# ---------------------------------------------------------------------------------------------
# Процессы и окружение


def wait_port(port, timeout=60):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise SystemExit(f"nothing listens on {port}")


class Procs:
    """Процессы прогона в своих группах; журналы — в каталоге прогона (для разбора сбоев)."""

    def __init__(self, logdir):
        self.logdir, self.items = Path(logdir), []

    def start(self, name, command, env):
        log = open(self.logdir / f"{name}.log", "ab")  # noqa: SIM115 — закрывается в stop_all
        proc = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.items.append((proc, log))
        return proc

    def stop(self, proc):
        for item in list(self.items):
            if item[0] is proc:
                self.items.remove(item)
                _terminate(proc)
                item[1].close()

    def stop_all(self):
        while self.items:
            self.stop(self.items[-1][0])


def _terminate(proc):
    """SIGTERM группе, через 20 с — SIGKILL (только свои процессы, по id группы)."""
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=20)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def rss_tree_mb(pid):
    """RSS процесса и всех его потомков, МБ."""
    return round(tree_sum(pid, lambda p: proc_kb(p, "status", "VmRSS:")) / 1024, 1)


def _cpu_ticks(pid):
    # utime, stime, cutime, cstime — поля 14–17 (после имени: 11–14 с нуля)
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return sum(int(v) for v in fields[11:15])


def cpu_tree_s(pid):
    """Процессорное время (user+sys) процесса, живых потомков и дождавшихся детей, с."""
    return tree_sum(pid, _cpu_ticks) / os.sysconf("SC_CLK_TCK")


def pids_named(name):
    """Корневые процессы с таким именем (postmaster, redis-server): их дети учтутся в cpu_tree_s."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except (FileNotFoundError, ProcessLookupError):
            continue
        comm, rest = stat[stat.index("(") + 1 : stat.rindex(")")], stat.rsplit(")", 1)[1].split()
        if comm.startswith(name):
            found[int(entry.name)] = int(rest[1])
    return [pid for pid, parent in found.items() if parent not in found]


def db_backends_cpu(database):
    """CPU живых бэкендов PostgreSQL нашей базы по pid (другие базы машины не в счёт)."""
    found = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            title = (entry / "cmdline").read_bytes().decode(errors="replace")
            if f" {database} " not in title:
                continue
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except (FileNotFoundError, ProcessLookupError):
            continue
        found[int(entry.name)] = sum(int(v) for v in fields[11:13]) / os.sysconf("SC_CLK_TCK")
    return found


def system_busy_s():
    """Занятое время всех ядер машины с загрузки (для доли «прочих»: PostgreSQL, Redis, нагрузчик)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return (sum(values[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def pss_tree_mb(pid):
    """PSS процесса и потомков, МБ: общие после fork страницы делятся между процессами, а не
    считаются в каждом заново, как в сумме RSS (prefork: главный процесс + дети)."""
    return round(tree_sum(pid, lambda p: proc_kb(p, "smaps_rollup", "Pss:")) / 1024, 1)


class RssSampler(threading.Thread):
    """Раз в 0,5 с — сумма RSS и сумма PSS воркера (главный процесс + дети)."""

    def __init__(self, pid):
        super().__init__(daemon=True)
        self.pid, self.samples, self.pss, self.done = pid, [], [], threading.Event()

    def run(self):
        while not self.done.wait(0.5):
            self.samples.append(rss_tree_mb(self.pid))
            self.pss.append(pss_tree_mb(self.pid))

    def summary(self):
        self.done.set()
        values, pss = self.samples or [0.0], self.pss or [0.0]
        return {
            "max_mb": max(values),
            "median_mb": statistics.median(values),
            "pss_max_mb": max(pss),
            "pss_median_mb": statistics.median(pss),
            "samples": len(values),
        }


def ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    with psycopg.connect(url.rsplit("/", 1)[0] + "/postgres", autocommit=True) as conn:
        if not conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone():
            conn.execute(f'CREATE DATABASE "{name}"')


def redis_clear(url):
    """Остатки прошлых прогонов под нашим префиксом (очереди Celery, лимитер, кэш)."""
    import redis

    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(f"{PREFIX}*", count=1000))
    for start in range(0, len(keys), 500):
        client.delete(*keys[start : start + 500])


def service_env(args, api_base, rates, data_dir, extra=None):
    return {
        "PATH": os.environ["PATH"],
        "HOME": os.environ.get("HOME", "/tmp"),
        "DJANGO_SETTINGS_MODULE": "config.settings.base",
        "LOG_LEVEL": "WARNING",
        "DATABASE_URL": args.database_url,
        "REDIS_URL": args.redis_url,
        "REDIS_KEY_PREFIX": PREFIX,
        "DATA_DIR": str(data_dir),
        "TELEGRAM_BOT_TOKEN": TOKEN,
        "TG_WEBHOOK_SECRET": SECRET,
        "TELEGRAM_API_BASE_URL": api_base,
        "CELERY_WORKER_CONCURRENCY": "2",
        **rates,
        **(extra or {}),
    }


def start_stack(procs, env, web_port, workers=1):
    web = procs.start(
        "web",
        [
            str(BIN / "gunicorn"),
            "config.asgi:application",
            "-k",
            "uvicorn_worker.UvicornWorker",
            "--bind",
            f"127.0.0.1:{web_port}",
            "--workers",
            "2",
            "--keep-alive",
            "75",
        ],
        env,
    )
    worker_procs = [
        procs.start(
            f"worker{i}",
            [str(BIN / "celery"), "-A", "config", "worker", "--loglevel=INFO", "-n", f"bench{i}@%h"],
            env,
        )
        for i in range(workers)
    ]
    wait_port(web_port)
    time.sleep(4)  # воркер Celery поднимается дольше веба
    return web, worker_procs


# ---------------------------------------------------------------------------------------------
# Данные: пользователи, деньги, задания


def django_setup(env):
    os.environ.update(env)
    import django

    django.setup()


def make_users(count, tokens, *, video_drafts=False):
    """Пользователи с деньгами (корректировка в журнале) и skip_confirmation; id — уникальные на прогон."""
    from botapp.billing import ledger
    from botapp.generation import drafts
    from botapp.models import TelegramUser, TransactionKind

    base = 7_000_000_000 + int(time.time()) % 1_000_000 * 1000
    users = TelegramUser.objects.bulk_create(
        [
            TelegramUser(telegram_id=base + i, first_name="Bench", language="ru", skip_confirmation=True)
            for i in range(count)
        ]
    )
    users = list(TelegramUser.objects.filter(telegram_id__gte=base, telegram_id__lt=base + count))
    for user in users:
        ledger.credit(
            user=user,
            amount=tokens,
            key=f"benchgen:fund:{user.pk}",
            kind=TransactionKind.ADJUSTMENT,
            source=ledger.ADJUSTMENTS,
            reason="generation benchmark funding",
        )
        if video_drafts:
            # Черновик видео ждёт промпт: следующий текст сразу запускает задание Veo
            drafts.draft_save(user=user, draft=drafts.draft_new(user=user, kind="video"))
    return [u.telegram_id for u in users]


def jobs_state(tids):
    from botapp.models import GenerationJob

    rows = GenerationJob.objects.filter(user__telegram_id__in=tids).values_list("status", flat=True)
    return list(rows)


def wait_done(tids, timeout, expected=None):
    expected = expected or len(tids)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = jobs_state(tids)
        if len(states) >= expected and all(s in TERMINAL for s in states):
            return True
        time.sleep(0.5)
    return False


def job_rows(tids):
    from botapp.models import GenerationJob, JobOutput

    jobs = {}
    for row in GenerationJob.objects.filter(user__telegram_id__in=tids).values(
        "pk", "user__telegram_id", "status", "created_at", "started_at", "generated_at", "delivered_at"
    ):
        jobs[row["user__telegram_id"]] = row
    outputs = dict(
        JobOutput.objects.filter(job__user__telegram_id__in=tids, index=0).values_list(
            "job__user__telegram_id", "created_at"
        )
    )
    for tid, created in outputs.items():
        jobs[tid]["output_created_at"] = created
    return jobs


def reconcile():
    from botapp.billing import reconcile as rec

    report = rec.reconcile_ledger()
    return {"ok": report.ok, "summary": report.summary()}


# ---------------------------------------------------------------------------------------------
# Нагрузка и статистика


def update(uid, tid, text, n):
    sender = {"id": tid, "is_bot": False, "first_name": "Bench", "language_code": "ru"}
    return {
        "update_id": uid,
        "message": {
            "message_id": n,
            "date": int(time.time()),
            "chat": {"id": tid, "type": "private", "first_name": "Bench"},
            "from": sender,
            "text": text,
        },
    }


async def _send_updates(url, tids, rate, prompt):
    """Открытая нагрузка: апдейт i уходит в t0 + i/rate, не дожидаясь ответов; время POST — time.time()."""
    base = int(time.time() * 1000) * 1000
    headers = {"X-Telegram-Bot-Api-Secret-Token": SECRET}
    # 40 соединений — как max_connections вебхука Telegram по умолчанию
    limits = httpx.Limits(max_connections=40, max_keepalive_connections=40)
    retries = RETRIES
    async with httpx.AsyncClient(limits=limits, timeout=120) as client:
        t0 = time.perf_counter()

        async def one(i, tid):
            delay = t0 + i / rate - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            posted = time.time()
            body = update(base + i, tid, prompt(i), i + 1)
            for attempt in range(3):
                try:
                    response = await client.post(url, json=body, headers=headers)
                    break
                except (httpx.ReadError, httpx.RemoteProtocolError):
                    # Сервер закрыл keep-alive соединение: Telegram тоже повторяет (дубль отсечёт ящик)
                    retries[0] += 1
                    if attempt == 2:
                        raise
            return tid, posted, response.status_code, (time.time() - posted) * 1000

        return await asyncio.gather(*(one(i, tid) for i, tid in enumerate(tids)))


def send_updates(url, tids, rate, prompt):
    return asyncio.run(_send_updates(url, tids, rate, prompt))


def pct(values, q):
    ordered = sorted(values)
    if not ordered:
        return None
    return round(ordered[min(len(ordered) - 1, int(q * len(ordered)))], 1)


def dist(values):
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "p50_ms": pct(values, 0.5),
        "p90_ms": pct(values, 0.9),
        "p99_ms": pct(values, 0.99),
        "max_ms": round(max(values), 1),
    }


def emulator_calls(api_base):
    return httpx.get(f"{api_base}/_calls", timeout=60).json()


def first_by_chat(calls, method, tag=None):
    found = {}
    for arrived, name, chat, code, label in calls:
        if name != method or code != 200 or chat is None or (tag is not None and label != tag):
            continue
        found.setdefault(int(chat), arrived)
    return found


def send_rate(calls):
    """Отправки (методы с лимитом) с кодом 200: в среднем, по секундам и максимум в скользящей секунде."""
    times = sorted(c[0] for c in calls if c[1] in LIMITED and c[3] == 200)
    if len(times) < 2:
        return {}
    span = times[-1] - times[0]
    per_second = {}
    for t in times:
        per_second[int(t - times[0])] = per_second.get(int(t - times[0]), 0) + 1
    # Ровный участок: без первых и последних 3 секунд
    inner = [per_second.get(s, 0) for s in range(3, int(span) - 3)]
    window_max, left = 0, 0
    for right in range(len(times)):
        while times[right] - times[left] >= 1.0:
            left += 1
        window_max = max(window_max, right - left + 1)
    return {
        "sends": len(times),
        "span_s": round(span, 1),
        "sends_per_s_mean": round(len(times) / span, 1),
        "sends_per_s_median_steady": statistics.median(inner) if inner else None,
        "sends_per_s_min_steady": min(inner) if inner else None,
        "max_in_any_1s_window": window_max,
    }


def method_counts(calls):
    counts = {}
    for _t, method, _chat, code, _tag in calls:
        key = method if code == 200 else f"{method}:{code}"
        counts[key] = counts.get(key, 0) + 1
    return dict(sorted(counts.items()))


# ---------------------------------------------------------------------------------------------
# Базовая линия


async def _baseline_send_photo(api_base, photo, n, concurrency):
    """Голый sendPhoto (multipart) в тот же эмулятор из одного asyncio-клиента."""
    url = f"{api_base}/bot{TOKEN}/sendPhoto"
    queue = list(range(n))
    latencies = []
    async with httpx.AsyncClient(timeout=60) as client:

        async def runner():
            while queue:
                i = queue.pop()
                started = time.perf_counter()
                response = await client.post(
                    url, data={"chat_id": str(1000 + i), "caption": "x"}, files={"photo": ("p.jpg", photo)}
                )
                response.raise_for_status()
                latencies.append((time.perf_counter() - started) * 1000)

        started = time.perf_counter()
        await asyncio.gather(*(runner() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {
        "calls": n,
        "concurrency": concurrency,
        "calls_per_s": round(n / seconds, 1),
        **{k: v for k, v in dist(latencies).items() if k != "n"},
    }


def provider_cost_ms(samples=20):
    """CPU офлайн-провайдера на картинку 1K (рисунок + PNG) и превью JPEG доставки — часть конвейера."""
    from botapp.generation.media import photo_payload
    from botapp.providers.offline import OfflineProvider

    provider = OfflineProvider(latency_s=0)
    render, preview, blob = [], [], b""
    for i in range(samples):
        started = time.perf_counter()
        image = provider.generate_image(
            model_id="m", prompt=f"кот {i}", references=[], aspect_ratio="1:1", image_size="1K", timeout_s=10
        )
        middle = time.perf_counter()
        blob = photo_payload(image.data)
        render.append((middle - started) * 1000)
        preview.append((time.perf_counter() - middle) * 1000)
    return {
        "render_png_1k_ms_p50": round(statistics.median(render), 1),
        "photo_payload_ms_p50": round(statistics.median(preview), 1),
        "png_bytes": len(image.data),
        "photo_payload_bytes": len(blob),
    }, blob


# ---------------------------------------------------------------------------------------------
# Картинки


def image_run(args, procs, rates, emulator_limits, jobs, rate, label, tmp):
    api_port, web_port = free_port(), free_port()
    api = procs.start(
        f"api-{label}",
        [sys.executable, "bench/fake_bot_api_media.py", str(api_port), *emulator_limits],
        os.environ.copy(),
    )
    wait_port(api_port)
    api_base = f"http://127.0.0.1:{api_port}"
    env = service_env(
        args, api_base, rates, tmp / "data", {"GEMINI_OFFLINE": "1", "GEMINI_OFFLINE_LATENCY_S": "0"}
    )
    web, workers = start_stack(procs, env, web_port)
    url = f"http://127.0.0.1:{web_port}/telegram/webhook/"
    # Прогрев: приложение PTB в каждом процессе веба и по заданию на каждый процесс воркера
    warm = make_users(8, 100_000)
    send_updates(url, warm, 8, lambda i: f"прогрев {i}")
    wait_done(warm, 60)
    httpx.post(f"{api_base}/_reset")
    tids = make_users(jobs, 100_000)
    sampler = RssSampler(workers[0].pid)
    sampler.start()
    watched = {"web": web.pid, "workers": [w.pid for w in workers], "bot_api": api.pid}
    cpu_before = _cpu_snapshot(watched)
    backends_before = db_backends_cpu(args.database_url.rsplit("/", 1)[1])
    started = time.time()
    RETRIES[0] = 0
    posts = send_updates(url, tids, rate, lambda i: f"кот в шляпе номер {i}")
    all_done = wait_done(tids, args.timeout)
    finished = time.time()
    cpu_after = _cpu_snapshot(watched)
    backends_after = db_backends_cpu(args.database_url.rsplit("/", 1)[1])
    rss = sampler.summary()
    calls = emulator_calls(api_base)
    for proc in (*workers, web, api):
        procs.stop(proc)

    rows = job_rows(tids)
    posted = {tid: t for tid, t, _code, _ms in posts}
    status = first_by_chat(calls, "sendMessage", "status")
    photo = first_by_chat(calls, "sendPhoto")
    a = [(status[t] - posted[t]) * 1000 for t in tids if t in status]
    b = [(photo[t] - rows[t]["generated_at"].timestamp()) * 1000 for t in tids if t in photo and t in rows]
    b_output = [
        (photo[t] - rows[t]["output_created_at"].timestamp()) * 1000
        for t in tids
        if t in photo and rows.get(t, {}).get("output_created_at")
    ]
    stages = {
        "post_to_job_created": dist(
            [(rows[t]["created_at"].timestamp() - posted[t]) * 1000 for t in tids if t in rows]
        ),
        "job_created_to_claimed": dist(
            [
                (rows[t]["started_at"] - rows[t]["created_at"]).total_seconds() * 1000
                for t in tids
                if rows.get(t, {}).get("started_at")
            ]
        ),
        "claimed_to_generated": dist(
            [
                (rows[t]["generated_at"] - rows[t]["started_at"]).total_seconds() * 1000
                for t in tids
                if rows.get(t, {}).get("generated_at") and rows[t].get("started_at")
            ]
        ),
        "post_to_photo": dist([(photo[t] - posted[t]) * 1000 for t in tids if t in photo]),
    }
    last_photo = max(photo.values()) if photo else finished
    first_post = min(posted.values())
    delivered = sum(1 for t in tids if rows.get(t, {}).get("status") == "delivered" and t in photo)
    result = {
        "jobs": jobs,
        "offered_rate_updates_per_s": rate,
        "webhook_codes": {str(c): sum(1 for p in posts if p[2] == c) for c in {p[2] for p in posts}},
        "webhook_response": dist([p[3] for p in posts]),
        "webhook_post_retries": RETRIES[0],
        "all_terminal_before_timeout": all_done,
        "delivered": delivered,
        "statuses": {
            s: sum(1 for r in rows.values() if r["status"] == s) for s in {r["status"] for r in rows.values()}
        },
        "status_messages_sent": len(a),
        "seconds_first_post_to_last_photo": round(last_photo - first_post, 2),
        "jobs_per_s": round(delivered / max(last_photo - first_post, 1e-9), 1),
        "a_update_to_status_message": dist(a),
        "b_generated_at_to_photo": dist(b),
        "b_output_stored_to_photo": dist(b_output),
        "stages": stages,
        "bot_api_calls": method_counts(calls),
        "telegram_429_received": sum(1 for c in calls if c[3] == 429),
        "send_rate": send_rate(calls),
        "worker_rss": rss,
        "cpu_ms_per_job": {
            **{
                name: round((cpu_after[name] - cpu_before[name]) * 1000 / max(jobs, 1), 1)
                for name in cpu_before
            },
            # Бэкенды нашей базы, живые в конце прогона (соединения веба и воркеров постоянные)
            "postgres_this_db": round(
                sum(v - backends_before.get(pid, 0.0) for pid, v in backends_after.items())
                * 1000
                / max(jobs, 1),
                1,
            ),
        },
        "wall_s": round(finished - started, 1),
    }
    return result, calls


def _cpu_snapshot(watched):
    """CPU по частям стенда; «machine» — все ядра машины (вместе с PostgreSQL, Redis и нагрузчиком)."""
    snap = {
        "web": cpu_tree_s(watched["web"]),
        "workers": sum(cpu_tree_s(pid) for pid in watched["workers"]),
        "bot_api": cpu_tree_s(watched["bot_api"]),
        "postgres": sum(cpu_tree_s(pid) for pid in pids_named("postgres")),
        "redis": sum(cpu_tree_s(pid) for pid in pids_named("redis-server")),
        "machine": system_busy_s(),
    }
    return snap


def image_main(args):
    tmp = Path(tempfile.mkdtemp(prefix="benchgen-"))
    (tmp / "data").mkdir()
    ensure_database(args.database_url)
    redis_clear(args.redis_url)
    env = service_env(args, "http://127.0.0.1:9", RAISED, tmp / "data", {"GEMINI_OFFLINE": "1"})
    subprocess.run(
        [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
    )
    django_setup(env)
    procs = Procs(tmp)
    results = {}
    try:
        if args.probe:
            # Проба при доводке: один прогон, отчёт — в stdout, bench/results не трогается
            if args.probe == "raised":
                probe, _ = image_run(args, procs, RAISED, [], args.jobs, args.rate, "raised", tmp)
            else:
                limits = ["--overall", "30", "--per-chat", "1", "--per-group", "20"]
                probe, _ = image_run(
                    args, procs, DEFAULT_RATES, limits, args.default_jobs, args.default_rate, "default", tmp
                )
            probe["reconcile"] = reconcile()
            print(json.dumps(probe, ensure_ascii=False, indent=1, default=str))
            return
        # Базовая линия: голый sendPhoto в тот же эмулятор
        costs, jpeg = provider_cost_ms()
        api_port = free_port()
        api = procs.start(
            "api-baseline", [sys.executable, "bench/fake_bot_api_media.py", str(api_port)], os.environ.copy()
        )
        wait_port(api_port)
        results["baseline_send_photo"] = asyncio.run(
            _baseline_send_photo(f"http://127.0.0.1:{api_port}", jpeg, args.baseline_calls, 8)
        )
        procs.stop(api)
        results["offline_provider_cpu"] = costs
        results["raised"], _ = image_run(args, procs, RAISED, [], args.jobs, args.rate, "raised", tmp)
        results["raised"]["reconcile"] = reconcile()
        # Пропускная способность — при подаче сверх цели (60/с): при 50/с больше 50 заданий/с не измерить,
        # а при 100/с приём апдейтов вебом отнимает ядро у воркеров и мерится уже перегрузка
        results["raised_capacity"], _ = image_run(
            args, procs, RAISED, [], args.jobs, args.capacity_rate, "capacity", tmp
        )
        results["raised_capacity"]["reconcile"] = reconcile()
        limits = ["--overall", "30", "--per-chat", "1", "--per-group", "20"]
        results["default_rates"], _ = image_run(
            args, procs, DEFAULT_RATES, limits, args.default_jobs, args.default_rate, "default", tmp
        )
        results["default_rates"]["reconcile"] = reconcile()
    finally:
        procs.stop_all()
    raised, default, capacity = results["raised"], results["default_rates"], results["raised_capacity"]
    base_rate = results["baseline_send_photo"]["calls_per_s"]
    report = {
        "benchmark": "generation pipeline (image)",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "shared": "other engineers ran tests concurrently",
        },
        "setup": {
            "web": (
                "gunicorn config.asgi:application -k uvicorn_worker.UvicornWorker --workers 2 --keep-alive 75"
            ),
            "worker": "celery -A config worker --loglevel=INFO; CELERY_WORKER_CONCURRENCY=2 (prefork)",
            "provider": "offline, GEMINI_OFFLINE_LATENCY_S=0 (real 1K PNG; CPU in offline_provider_cpu)",
            "bot_api": "bench/fake_bot_api_media.py (multipart, arrival times, optional limits + 429)",
            "database": args.database_url,
            "redis_key_prefix": PREFIX,
            "users": "pre-funded via ledger.credit(kind=adjustment), skip_confirmation=True, one job each",
            "load": (
                f"open loop, one text update per job; raised: {args.rate:g}/s (latency at the target load), "
                f"raised_capacity: {args.capacity_rate:g}/s (over capacity: jobs/s is the capacity)"
            ),
            "raised_run_rates": RAISED,
            "default_run_rates": DEFAULT_RATES,
            "default_run_emulator": "30 msg/s overall (1 s window), 1/s per chat (burst 3), 20/min per group",
            "send_originals_as_files": "default True: each job sends sendPhoto + sendDocument",
        },
        "results": results,
        "summary": {
            "jobs_per_s": capacity["jobs_per_s"],
            "jobs_per_s_at_offered_rate": raised["jobs_per_s"],
            "machine_cpu_ms_per_job": capacity["cpu_ms_per_job"].get("machine"),
            "a_p50_ms": raised["a_update_to_status_message"].get("p50_ms"),
            "a_p99_ms": raised["a_update_to_status_message"].get("p99_ms"),
            "b_p50_ms": raised["b_generated_at_to_photo"].get("p50_ms"),
            "b_p99_ms": raised["b_generated_at_to_photo"].get("p99_ms"),
            "default_sends_per_s_mean": default["send_rate"].get("sends_per_s_mean"),
            "default_sends_per_s_median_steady": default["send_rate"].get("sends_per_s_median_steady"),
            "default_429_received": default["telegram_429_received"],
            "all_delivered": (
                raised["delivered"] == capacity["delivered"] == args.jobs
                and default["delivered"] == args.default_jobs
            ),
            "invariants_ok": all(run["reconcile"]["ok"] for run in (raised, capacity, default)),
            "baseline_send_photo_per_s": base_rate,
            "ratio_jobs_per_s_vs_baseline_send_photo": round(capacity["jobs_per_s"] / base_rate, 3),
            "targets": {
                "jobs_per_s>=50": capacity["jobs_per_s"] >= 50,
                "a_p99<=200ms": (raised["a_update_to_status_message"].get("p99_ms") or 1e9) <= 200,
                "b_p99<=300ms": (raised["b_generated_at_to_photo"].get("p99_ms") or 1e9) <= 300,
                "default_sends_per_s>=28": (default["send_rate"].get("sends_per_s_median_steady") or 0) >= 28,
                "default_zero_429": default["telegram_429_received"] == 0,
            },
        },
        "logs": str(tmp),
    }
    write(report, args.out or ROOT / "bench" / "results" / "generation.json")


# ---------------------------------------------------------------------------------------------
# Видео


def video_main(args):
    tmp = Path(tempfile.mkdtemp(prefix="benchvid-"))
    (tmp / "data").mkdir()
    ensure_database(args.database_url)
    redis_clear(args.redis_url)
    procs = Procs(tmp)
    try:
        gemini = subprocess.Popen(
            [sys.executable, "-m", "botapp.tests.support.fake_gemini", "--port", "0"],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=open(tmp / "gemini.log", "ab"),  # noqa: SIM115
            start_new_session=True,
            text=True,
        )
        gemini_base = gemini.stdout.readline().strip()
        api_port, web_port = free_port(), free_port()
        api = procs.start(
            "api", [sys.executable, "bench/fake_bot_api_media.py", str(api_port)], os.environ.copy()
        )
        wait_port(api_port)
        api_base = f"http://127.0.0.1:{api_port}"
        env = service_env(
            args,
            api_base,
            RAISED,
            tmp / "data",
            {
                "GEMINI_OFFLINE": "0",
                "GEMINI_API_KEY": "test-gemini-key",  # pragma: allowlist secret
                "GEMINI_API_BASE_URL": gemini_base,
                "VIDEO_POLL_INTERVAL_S": str(args.poll),
                "CELERY_WORKER_POOL": args.pool,
            },
        )
        subprocess.run(
            [str(BIN / "python"), "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=env, check=True
        )
        django_setup(env)
        web, workers = start_stack(procs, env, web_port)
        url = f"http://127.0.0.1:{web_port}/telegram/webhook/"
        # Прогрев: одно короткое видео (без [after]) — импорт SDK и приложения PTB в процессах
        warm = make_users(2, 10_000_000, video_drafts=True)
        send_updates(url, warm, 2, lambda i: f"прогрев {i}")
        wait_done(warm, 120)
        httpx.post(f"{api_base}/_reset")
        tids = make_users(args.jobs, 10_000_000, video_drafts=True)
        rss_idle = rss_tree_mb(workers[0].pid)
        sampler = RssSampler(workers[0].pid)
        sampler.start()
        started = time.time()
        RETRIES[0] = 0
        posts = send_updates(url, tids, args.rate, lambda i: f"закат над морем {i} [after:{args.after:g}]")
        budget = args.after + 2 * args.poll
        all_done = wait_done(tids, args.timeout)
        finished = time.time()
        rss = sampler.summary()
        calls = emulator_calls(api_base)
        for proc in (*workers, web, api):
            procs.stop(proc)
        _terminate(gemini)
    finally:
        procs.stop_all()
    rows = job_rows(tids)
    posted = {tid: t for tid, t, _code, _ms in posts}
    video = first_by_chat(calls, "sendVideo")
    submitted = [r["started_at"].timestamp() for r in rows.values() if r.get("started_at")]
    last_submit = max(submitted) if submitted else started
    last_video = max(video.values()) if video else finished
    delivered = sum(1 for t in tids if rows.get(t, {}).get("status") == "delivered" and t in video)
    late = [
        t
        for t in tids
        if t in video and rows.get(t, {}).get("started_at") and video[t] > last_submit + budget
    ]
    result = {
        "jobs": args.jobs,
        "operation_s": args.after,
        "video_poll_interval_s": args.poll,
        "webhook_codes": {str(c): sum(1 for p in posts if p[2] == c) for c in {p[2] for p in posts}},
        "webhook_response": dist([p[3] for p in posts]),
        "webhook_post_retries": RETRIES[0],
        "all_terminal_before_timeout": all_done,
        "delivered": delivered,
        "statuses": {
            s: sum(1 for r in rows.values() if r["status"] == s) for s in {r["status"] for r in rows.values()}
        },
        "seconds_first_post_to_last_post": round(max(posted.values()) - min(posted.values()), 1),
        "seconds_first_post_to_last_submit": round(last_submit - min(posted.values()), 1),
        "seconds_last_submit_to_last_video": round(last_video - last_submit, 1),
        "seconds_first_post_to_last_video": round(last_video - min(posted.values()), 1),
        "budget_s_after_last_submit": budget,
        "delivered_after_budget": len(late),
        "submit_to_video": dist(
            [
                (video[t] - rows[t]["started_at"].timestamp()) * 1000
                for t in tids
                if t in video and rows.get(t, {}).get("started_at")
            ]
        ),
        "bot_api_calls": method_counts(calls),
        "worker_rss_idle_mb": rss_idle,
        "worker_rss": rss,
        "reconcile": reconcile(),
    }
    report = {
        "benchmark": "video concurrency (Veo)",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "shared": "other engineers ran tests concurrently",
        },
        "setup": {
            "web": (
                "gunicorn config.asgi:application -k uvicorn_worker.UvicornWorker --workers 2 --keep-alive 75"
            ),
            "worker": (
                "one `celery -A config worker --loglevel=INFO`, CELERY_WORKER_CONCURRENCY=2, "
                f"CELERY_WORKER_POOL={args.pool}"
            ),
            "provider": f"GeminiProvider (REST Veo) + fake_gemini, prompt [after:{args.after:g}]",
            "bot_api": "bench/fake_bot_api_media.py, no limits",
            "rates": RAISED,
            "database": args.database_url,
            "redis_key_prefix": PREFIX,
            "load": f"open loop at {args.rate} updates/s, one text update per job (video draft pre-created)",
        },
        "results": result,
        "summary": {
            "jobs": args.jobs,
            "delivered": delivered,
            "last_submit_to_last_video_s": result["seconds_last_submit_to_last_video"],
            "budget_s": budget,
            "within_budget": delivered == args.jobs and not late,
            "worker_rss_max_mb": rss["max_mb"],
            "rss_target_met": rss["max_mb"] <= 250,
            "invariants_ok": result["reconcile"]["ok"],
        },
        "logs": str(tmp),
    }
    write(report, args.out or ROOT / "bench" / "results" / "video.json")


def code_state():
    """Какой код мерили: коммит и незакоммиченные файлы (дерево общее — его правят другие)."""
    source = ROOT / ".bench-source"
    if source.exists():
        return source.read_text().strip()
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        dirty = subprocess.run(
            ["git", "status", "--porcelain"], cwd=ROOT, capture_output=True, text=True
        ).stdout
    except OSError:
        return "unknown"
    changed = [line[3:] for line in dirty.splitlines() if not line[3:].startswith("bench/")]
    return f"{head.strip()} + uncommitted: {', '.join(changed) or 'none'}"


def write(report, path):
    report["code"] = code_state()
    text = json.dumps(report, indent=2, ensure_ascii=False, default=str)
    print(text)
    Path(path).write_text(text + "\n")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("image", "video"))
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--rate", type=float, default=None, help="апдейтов/с (image: 50, video: 200)")
    parser.add_argument(
        "--capacity-rate", type=float, default=60, help="image: подача прогона пропускной способности"
    )
    parser.add_argument(
        "--default-jobs", type=int, default=300, help="image: заданий при лимитах по умолчанию"
    )
    # 12 заданий/с × 3 отправки > 29/с лимитера: меряется сам лимит, а не подача
    parser.add_argument("--default-rate", type=float, default=12)
    parser.add_argument("--baseline-calls", type=int, default=2000)
    parser.add_argument("--after", type=float, default=60, help="video: длительность операции Veo, с")
    parser.add_argument("--poll", type=int, default=10, help="video: VIDEO_POLL_INTERVAL_S")
    parser.add_argument(
        "--pool",
        choices=("prefork", "threads"),
        default="prefork",
        help="CELERY_WORKER_POOL воркера (video: threads — раскладка воркера очереди video_poll)",
    )
    parser.add_argument("--timeout", type=float, default=900)
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_generation")
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/15")
    parser.add_argument("--out")
    parser.add_argument(
        "--probe", choices=("raised", "default"), help="image: только этот прогон, отчёт в stdout"
    )
    args = parser.parse_args()
    if args.rate is None:
        args.rate = 50.0 if args.mode == "image" else 200.0
    image_main(args) if args.mode == "image" else video_main(args)


if __name__ == "__main__":
    main()
