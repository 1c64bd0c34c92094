"""Бенчмарк обзора панели на 1 000 000 заданий: время каждого селектора за сегодня / 7 / 30 дней.

Отдельная база (по умолчанию bench_dashboard, создаётся и мигрируется). Данные засеваются одним
INSERT … SELECT generate_series на таблицу (пользователи, счета, задания за 60 дней по всем моделям
каталога, платежи, проводки release/payment_refund/capture, события ошибок) и переиспользуются
следующими прогонами (--reseed — заново). Базовая линия в том же прогоне — SELECT count(*) по
таблице заданий (всей и за 30 дней). Каждый виджет — несколько прогонов после прогрева, p50 и max.

    .venv/bin/python bench/dashboard_bench.py --out bench/results/dashboard.json
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SEED_TAG = "bench-dash"


def _ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


# Пользователи: создание за 90 дней, последний апдейт — между созданием и «сейчас»
SQL_USERS = """
INSERT INTO botapp_telegramuser (telegram_id, first_name, last_name, username, language_code, language,
    is_premium, is_blocked, is_banned, send_originals_as_files, skip_confirmation, start_payload,
    created_at, last_seen_at, lava_email, default_aspect_ratio, default_image_model, default_outputs)
SELECT 800000000 + g, 'User' || g, '', '', 'ru', '', false, false, false, true, false, '',
    c, c + (now() - c) * power(random(), 3), '', '1:1', '', 1
FROM (SELECT g, now() - random() * interval '90 days' AS c FROM generate_series(1, %(users)s) AS g) AS s
"""

SQL_ACCOUNTS = """
INSERT INTO botapp_account (kind, user_id, code, available, on_hold, updated_at)
SELECT 'user', id, '', 0, 0, now() FROM botapp_telegramuser WHERE first_name LIKE 'User%%'
"""

# Задания: 60 дней, популярность моделей и пользователей неравномерна; статусы — как в жизни
SQL_JOBS = (
    """
WITH m AS (
    SELECT array_agg(id ORDER BY "order", id) AS ids, array_agg(kind ORDER BY "order", id) AS kinds,
           count(*)::int AS n FROM botapp_generationmodel
), u AS (SELECT min(id) AS first, count(*)::int AS n FROM botapp_telegramuser WHERE first_name LIKE 'User%%'),
s AS (
    SELECT g, random() AS r, now() - random() * interval '60 days' AS created,
           1 + floor(power(random(), 2) * (SELECT n FROM m))::int AS mi,
           (SELECT first FROM u) + floor(power(random(), 3) * (SELECT n FROM u))::int AS uid
    FROM generate_series(1, %(jobs)s) AS g
), t AS (
    SELECT s.*, m.ids[mi] AS model_id, m.kinds[mi] AS kind,
        CASE WHEN r < 0.0002 THEN 'queued' WHEN r < 0.0004 THEN 'running' WHEN r < 0.0010 THEN 'generated'
             WHEN r < 0.86 THEN 'delivered' WHEN r < 0.93 THEN 'failed' WHEN r < 0.96 THEN 'expired'
             ELSE 'cancelled' END AS status,
        CASE WHEN m.kinds[mi] = 'video' THEN 40 + random() * 140 ELSE 4 + random() * 30 END AS seconds
    FROM s, m
)
INSERT INTO botapp_generationjob (user_id, model_id, kind, status, idempotency_key, prompt, params,
    reference_file_ids, price, charged, cost_usd, attempts, deadline, provider_started, operation_name,
    error_category, error_message, created_at, started_at, generated_at, delivered_at, finished_at)
SELECT uid, model_id, kind, status, '"""
    + SEED_TAG
    + """:' || g, 'bench prompt', '{}', '[]',
    CASE WHEN kind = 'video' THEN 240 ELSE 14 END,
    CASE WHEN status = 'delivered' THEN (CASE WHEN kind = 'video' THEN 240 ELSE 14 END) ELSE 0 END,
    CASE WHEN kind = 'video' THEN 1.2 ELSE 0.067 END, 1, created + interval '1 hour',
    status NOT IN ('queued', 'cancelled'), '',
    CASE WHEN status = 'failed' THEN 'provider' ELSE '' END, '', created,
    CASE WHEN status IN ('queued', 'cancelled') THEN NULL ELSE created + interval '1 second' END,
    CASE WHEN status IN ('generated', 'delivered')
         THEN created + interval '1 second' + seconds * interval '1 second' END,
    CASE WHEN status = 'delivered' THEN created + interval '2 seconds' + seconds * interval '1 second' END,
    CASE WHEN status IN ('delivered', 'failed', 'expired', 'cancelled')
         THEN created + interval '3 minutes' END
FROM t
"""
)

SQL_PAYMENTS = (
    """
INSERT INTO botapp_payment (method, external_id, user_id, amount, currency, tokens, status, refund_attempts,
    refund_shortfall, note, raw, created_at)
SELECT CASE WHEN r < 0.7 THEN 'stars' ELSE 'lava' END, '"""
    + SEED_TAG
    + """:' || g,
    (SELECT min(id) FROM botapp_telegramuser) + floor(random() * %(users)s)::int,
    CASE WHEN r < 0.7 THEN 250 WHEN r < 0.85 THEN 199 WHEN r < 0.95 THEN 2.99 ELSE 2.49 END,
    CASE WHEN r < 0.7 THEN 'XTR' WHEN r < 0.85 THEN 'RUB' WHEN r < 0.95 THEN 'USD' ELSE 'EUR' END,
    250, CASE WHEN random() < 0.02 THEN 'refunded' ELSE 'paid' END, 0, 0, '', '{}',
    now() - random() * interval '60 days'
FROM (SELECT g, random() AS r FROM generate_series(1, %(payments)s) AS g) AS s
"""
)

# Проводки: холды, списания, возвраты холдов и платежей; строки — на счёт пользователя (available)
SQL_LEDGER_TX = (
    """
INSERT INTO botapp_ledgertransaction (idempotency_key, kind, user_id, reference_type, reference_id, reason,
    created_at)
SELECT '"""
    + SEED_TAG
    + """:' || g,
    CASE WHEN r < 0.45 THEN 'hold' WHEN r < 0.85 THEN 'capture' WHEN r < 0.98 THEN 'release'
         ELSE 'payment_refund' END,
    (SELECT min(id) FROM botapp_telegramuser) + floor(random() * %(users)s)::int, '', '', '',
    now() - random() * interval '60 days'
FROM (SELECT g, random() AS r FROM generate_series(1, %(ledger)s) AS g) AS s
"""
)

SQL_LEDGER_ENTRIES = (
    """
INSERT INTO botapp_ledgerentry (transaction_id, account_id, bucket, amount)
SELECT t.id, a.id, CASE WHEN t.kind IN ('capture', 'release') THEN 'on_hold' ELSE 'available' END, -14
FROM botapp_ledgertransaction t JOIN botapp_account a ON a.user_id = t.user_id
WHERE t.idempotency_key LIKE '"""
    + SEED_TAG
    + """:%%'
UNION ALL
SELECT t.id, a.id, CASE WHEN t.kind = 'hold' THEN 'on_hold' ELSE 'available' END, 14
FROM botapp_ledgertransaction t JOIN botapp_account a ON a.user_id = t.user_id
WHERE t.idempotency_key LIKE '"""
    + SEED_TAG
    + """:%%' AND t.kind IN ('hold', 'release')
"""
)

SQL_ERRORS = (
    """
INSERT INTO botapp_errorgroup (fingerprint, title, source, status, count, first_seen, last_seen)
SELECT '"""
    + SEED_TAG
    + """:' || g, 'Bench error ' || g, 'bench', 'new', 0, now(), now()
FROM generate_series(1, 50) AS g;
INSERT INTO botapp_errorevent (group_id, stack, context, created_at)
SELECT (SELECT min(id) FROM botapp_errorgroup) + floor(power(random(), 2) * 50)::int, '', '{}',
    now() - random() * interval '30 days'
FROM generate_series(1, %(errors)s)
"""
)


def _seed(cursor, sizes, reseed):
    cursor.execute("SELECT count(*) FROM botapp_generationjob")
    (jobs,) = cursor.fetchone()
    if jobs >= sizes["jobs"] and not reseed:
        return {"reused": True, "jobs": jobs}
    cursor.execute(
        "TRUNCATE botapp_ledgerentry, botapp_ledgertransaction, botapp_hold, botapp_joboutput, "
        "botapp_generationjob, botapp_payment, botapp_invoice, botapp_account, botapp_errorevent, "
        "botapp_errorgroup, botapp_telegramuser CASCADE"
    )
    timings = {}
    for name, sql in [
        ("users", SQL_USERS),
        ("accounts", SQL_ACCOUNTS),
        ("jobs", SQL_JOBS),
        ("payments", SQL_PAYMENTS),
        ("ledger_transactions", SQL_LEDGER_TX),
        ("ledger_entries", SQL_LEDGER_ENTRIES),
        ("errors", SQL_ERRORS),
    ]:
        started = time.perf_counter()
        for statement in sql.split(";\n"):
            cursor.execute(statement, sizes)
        timings[name] = round(time.perf_counter() - started, 1)
        print(f"seeded {name} in {timings[name]} s", file=sys.stderr)
    cursor.execute("VACUUM ANALYZE")
    return {"reused": False, "seconds": timings}


def _measure(fn, runs):
    fn()  # прогрев: кэш страниц PostgreSQL и планов
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": round(statistics.median(samples), 2), "max_ms": round(max(samples), 2)}


def _count_sql(sql, params=()):
    from django.db import connection

    def run():
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            cursor.fetchall()

    return run


COVERING_INDEX_SQL = (
    "CREATE INDEX IF NOT EXISTS bench_job_period_covering ON botapp_generationjob (created_at) "
    "INCLUDE (model_id, status, charged, cost_usd, started_at, generated_at)"
)


def _measure_widgets(runs):
    """Каждый селектор обзора за каждый период и страница целиком (отчёт + SVG + шаблон)."""
    from django.template.loader import render_to_string

    from dashboard.selectors import overview as sel
    from dashboard.views.overview import PERIOD_LINKS, overview_charts

    rates = sel.overview_rates()
    # Базовая линия в том же наборе замеров: машина общая, нагрузка соседей плавает
    periods = {
        "baseline": {
            "select count(*) all jobs": _measure(
                _count_sql("SELECT count(*) FROM botapp_generationjob"), runs
            ),
            "select count(*) jobs 30 days": _measure(
                _count_sql(
                    "SELECT count(*) FROM botapp_generationjob WHERE created_at >= now() - interval '30 days'"
                ),
                runs,
            ),
        }
    }
    for key in sel.PERIODS:
        period = sel.overview_period(key=key)
        widgets = {
            "users": lambda p=period: sel.overview_users(period=p),
            "models (status counts, charged, cost)": lambda p=period: sel.overview_models(
                period=p, rates=rates
            ),
            "durations p50/p95": lambda p=period: sel.overview_durations(period=p),
            "revenue": lambda p=period: sel.overview_revenue(period=p, rates=rates),
            "ledger release/payment_refund": lambda p=period: sel.overview_ledger(period=p),
            "daily jobs series": lambda p=period: sel.overview_days(period=p),
            "daily revenue series": lambda p=period: sel.overview_days_revenue(period=p, rates=rates),
            "queue (db + broker)": lambda p=period: sel.overview_queue(now=p.end),
            "errors 24h": lambda p=period: sel.overview_errors(now=p.end),
        }
        results = {name: _measure(fn, runs) for name, fn in widgets.items()}

        def page(p=period):
            report = sel.overview_report(period=p)
            context = {"report": report, "charts": overview_charts(report), "period_links": PERIOD_LINKS}
            return render_to_string("dashboard/overview.html", context)

        results["whole page (report + SVG + template)"] = _measure(page, runs)
        periods[key] = results
        print(f"period {key}: done", file=sys.stderr)
    return periods


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_dashboard")
    parser.add_argument("--jobs", type=int, default=1_000_000)
    parser.add_argument("--users", type=int, default=50_000)
    parser.add_argument("--payments", type=int, default=40_000)
    parser.add_argument("--ledger", type=int, default=300_000)
    parser.add_argument("--errors", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--reseed", action="store_true")
    parser.add_argument("--covering-index", action="store_true", help="замерить ещё и с покрывающим индексом")
    parser.add_argument("--out")
    args = parser.parse_args()

    load_at_start = os.getloadavg()
    _ensure_database(args.database_url)
    os.environ.update(
        {
            "DATABASE_URL": args.database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "REDIS_KEY_PREFIX": "nbbenchdash:",
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=os.environ, check=True
    )
    import django

    django.setup()
    from django.db import connection

    sizes = {"jobs": args.jobs, "users": args.users, "payments": args.payments, "ledger": args.ledger}
    sizes["errors"] = args.errors
    with connection.cursor() as cursor:
        seed = _seed(cursor, sizes, args.reseed)
        cursor.execute("SELECT count(*) FROM botapp_generationjob")
        (jobs_total,) = cursor.fetchone()

    periods = _measure_widgets(args.runs)
    covering = None
    if args.covering_index:
        # Опыт: покрывающий индекс для сканов по периоду (только в базе бенчмарка, затем удаляется)
        with connection.cursor() as cursor:
            cursor.execute(COVERING_INDEX_SQL)
            cursor.execute("VACUUM ANALYZE botapp_generationjob")
            cursor.execute("SELECT pg_size_pretty(pg_relation_size('bench_job_period_covering'))")
            (size,) = cursor.fetchone()
        covering = {"sql": COVERING_INDEX_SQL, "size": size, "periods": _measure_widgets(args.runs)}
        with connection.cursor() as cursor:
            cursor.execute("DROP INDEX bench_job_period_covering")

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FILTER (WHERE created_at >= now() - interval '30 days'), "
            "count(*) FILTER (WHERE created_at >= now() - interval '7 days') FROM botapp_generationjob"
        )
        jobs_30, jobs_7 = cursor.fetchone()
        cursor.execute("SELECT version()")
        (pg_version,) = cursor.fetchone()

    report = {
        "benchmark": "dashboard overview selectors",
        "date": datetime.now(UTC).date().isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(), "postgres": pg_version},
        "database": args.database_url,
        "data": {
            "jobs": jobs_total,
            "jobs_last_30_days": jobs_30,
            "jobs_last_7_days": jobs_7,
            "users": args.users,
            "payments": args.payments,
            "ledger_transactions": args.ledger,
            "error_events": args.errors,
            "seed": seed,
        },
        "runs_per_widget": args.runs,
        # Машина общая (2 CPU, параллельно идут тесты соседей): сравнивайте с baseline того же набора
        "load_average": {"start": load_at_start, "end": os.getloadavg()},
        "periods": periods,
        "covering_index_experiment": covering,
    }
    text = json.dumps(report, ensure_ascii=False, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
