"""Бенчмарк журнала денег: пары hold+capture в секунду на PostgreSQL, 8 параллельных клиентов.

Два сценария: один «горячий» пользователь (все клиенты бьют в одну строку счёта) и 1000
пользователей. Базовая линия в том же прогоне — нижняя граница стоимости: те же два условных
UPDATE остатка, но без проводок, холдов и ключей идемпотентности (отдельная таблица). После
прогона — полная сверка инвариантов. Печатает JSON; --out сохраняет его.

    .venv/bin/python bench/billing_bench.py --out bench/results/billing.json
"""

import argparse
import json
import multiprocessing
import os
import random
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BASELINE_TABLE = "bench_baseline_account"


def _percentile(values, q):
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def _ensure_database(url):
    import psycopg

    name = url.rsplit("/", 1)[1]
    admin = url.rsplit("/", 1)[0] + "/postgres"
    with psycopg.connect(admin, autocommit=True) as conn:
        exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone()
        if not exists:
            conn.execute(f'CREATE DATABASE "{name}"')


def _ledger_client(args):
    """Клиент-процесс: пары hold+capture через сервисы журнала; задержка каждой пары в мс."""
    user_ids, ops, seed, tag = args
    from django.db import connections

    connections.close_all()
    from botapp.billing import ledger
    from botapp.models import TelegramUser

    users = {pk: TelegramUser.objects.get(pk=pk) for pk in set(user_ids)}
    rng = random.Random(seed)
    latencies = []
    for i in range(ops):
        user = users[rng.choice(user_ids)]
        started = time.perf_counter()
        held = ledger.hold(user=user, amount=10, key=f"bench:{tag}:{seed}:{i}")
        ledger.capture(hold=held, amount=10)
        latencies.append((time.perf_counter() - started) * 1000)
    connections.close_all()
    return latencies


def _baseline_client(args):
    """Базовая линия: те же два условных UPDATE остатка, без журнала."""
    account_ids, ops, seed, _tag = args
    from django.db import connection, connections, transaction

    connections.close_all()
    rng = random.Random(seed)
    latencies = []
    for _ in range(ops):
        account_id = rng.choice(account_ids)
        started = time.perf_counter()
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {BASELINE_TABLE} SET available = available - 10, on_hold = on_hold + 10 "
                "WHERE id = %s AND available >= 10",
                [account_id],
            )
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(
                f"UPDATE {BASELINE_TABLE} SET on_hold = on_hold - 10 WHERE id = %s AND on_hold >= 10",
                [account_id],
            )
        latencies.append((time.perf_counter() - started) * 1000)
    connections.close_all()
    return latencies


def _run(client, ids, clients, ops, tag):
    ctx = multiprocessing.get_context("fork")
    from django.db import connections

    connections.close_all()
    started = time.perf_counter()
    with ctx.Pool(clients) as pool:
        results = pool.map(client, [(ids, ops, seed, tag) for seed in range(clients)])
    seconds = time.perf_counter() - started
    latencies = [value for chunk in results for value in chunk]
    return {
        "pairs": len(latencies),
        "seconds": round(seconds, 2),
        "pairs_per_s": round(len(latencies) / seconds, 1),
        "p50_ms": round(statistics.median(latencies), 2),
        "p99_ms": round(_percentile(latencies, 0.99), 2),
    }


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--database-url", default="postgres://postgres@127.0.0.1:5432/bench_billing")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--ops", type=int, default=300, help="пар hold+capture на клиента")
    parser.add_argument("--users", type=int, default=1000)
    parser.add_argument("--out")
    args = parser.parse_args()

    _ensure_database(args.database_url)
    os.environ.update(
        {
            "DATABASE_URL": args.database_url,
            "DJANGO_SETTINGS_MODULE": "config.settings.base",
            "REDIS_URL": "redis://127.0.0.1:6379/15",
            "REDIS_KEY_PREFIX": "nbbench:",
        }
    )
    subprocess.run(
        [sys.executable, "manage.py", "migrate", "--noinput", "-v0"], cwd=ROOT, env=os.environ, check=True
    )
    import django

    django.setup()
    from django.db import connection

    from botapp.billing import ledger, reconcile
    from botapp.models import TelegramUser, TransactionKind

    run_tag = str(int(time.time()))
    users = [
        TelegramUser.objects.create(telegram_id=900_000_000 + int(run_tag) % 100_000 * 10_000 + i)
        for i in range(args.users + 1)
    ]
    budget = args.clients * args.ops * 10
    for user in users:
        ledger.credit(
            user=user,
            amount=budget,
            key=f"bench:{run_tag}:fund:{user.pk}",
            kind=TransactionKind.ADJUSTMENT,
            source=ledger.ADJUSTMENTS,
            reason="benchmark funding",
        )
    with connection.cursor() as cursor:
        cursor.execute(
            f"CREATE TABLE IF NOT EXISTS {BASELINE_TABLE} (id serial PRIMARY KEY, "
            "available bigint NOT NULL CHECK (available >= 0), on_hold bigint NOT NULL CHECK (on_hold >= 0))"
        )
        cursor.execute(f"TRUNCATE {BASELINE_TABLE}")
        cursor.execute(
            f"INSERT INTO {BASELINE_TABLE} (available, on_hold) "
            "SELECT %s, 0 FROM generate_series(1, %s) RETURNING id",
            [budget, args.users + 1],
        )
        baseline_ids = [row[0] for row in cursor.fetchall()]

    hot_user, spread_users = [users[0].pk], [u.pk for u in users[1:]]
    results = {
        "baseline": {
            "hot": _run(_baseline_client, baseline_ids[:1], args.clients, args.ops, run_tag),
            "spread": _run(_baseline_client, baseline_ids[1:], args.clients, args.ops, run_tag),
        },
        "ledger": {
            "hot": _run(_ledger_client, hot_user, args.clients, args.ops, f"{run_tag}h"),
            "spread": _run(_ledger_client, spread_users, args.clients, args.ops, f"{run_tag}s"),
        },
    }
    report = reconcile.reconcile_ledger()
    output = {
        "benchmark": "billing hold+capture",
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]},
        "setup": {
            "clients": args.clients,
            "pairs_per_client": args.ops,
            "users": args.users,
            "clients_are": "OS processes, each with its own PostgreSQL connection",
            "baseline": "two conditional UPDATEs of a balance row, no ledger rows, holds or keys",
        },
        "results": results,
        "ratio_ledger_vs_baseline": {
            scenario: round(
                results["ledger"][scenario]["pairs_per_s"] / results["baseline"][scenario]["pairs_per_s"], 2
            )
            for scenario in ("hot", "spread")
        },
        "invariants_ok": report.ok,
        "invariants": report.summary(),
    }
    text = json.dumps(output, indent=2, ensure_ascii=False)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
