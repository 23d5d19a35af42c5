"""The domain gauges' queries (observability/collector.py) on a seeded PostgreSQL read model.

    PYTHONPATH=$PWD .venv/bin/python -m bench.metrics_queries postgresql://…/db [--rounds 20]

The database must hold issue 10's read model (``bench.seed_read_model``: 1M tasks, a quarter
open). Unless it has webhook deliveries already, it adds 20 subscriptions with 1M deliveries, 99.9 %
of them delivered and 1,000 due (``--no-webhooks`` skips that). It runs each collector query
and its baseline, interleaved, ``--rounds`` times on one connection (the baseline: the cheapest
statement that reads the same rows, ``count(*)`` of the open tasks, of the due deliveries of
one subscription), prints medians, p99 and ratios, and writes each query's
``EXPLAIN (ANALYZE, BUFFERS)`` to ``bench/results/metrics_queries_plans.txt``.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy.dialects import postgresql

from observability.collector import _OPEN_TASKS, webhook_backlog_query

RESULTS = Path(__file__).parent / "results"


def _sql(statement: Any) -> str:
    return str(
        statement.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
    )


def _seed_webhooks(conn: psycopg.Connection[Any]) -> None:
    if conn.execute("SELECT 1 FROM webhook_deliveries LIMIT 1").fetchone():
        return
    org = conn.execute("SELECT id FROM organisations LIMIT 1").fetchone()
    assert org is not None
    now = dt.datetime.now(dt.UTC)
    subs = [uuid.uuid4() for _ in range(20)]
    with conn.cursor() as cur:
        for sub in subs:
            cur.execute(
                "INSERT INTO webhook_subscriptions (id, org_id, url, events, secret, is_active, "
                "is_test_mode, consecutive_failures, created_utc, updated_utc) VALUES "
                "(%s, %s, 'https://example.com/hook', '[]', 'whsec_x', true, false, 0, %s, %s)",
                (sub, org[0], now, now),
            )
        cur.execute(
            """
            INSERT INTO webhook_deliveries (id, subscription_id, event_id, replay_of, case_id,
              event_type, payload, created_at, next_attempt_at, delivered_at, attempt_count)
            SELECT gen_random_uuid()::text, (%s::uuid[])[1 + i %% 20], 'e' || i, '', NULL,
              'case.updated', '{}', %s - make_interval(secs => i),
              CASE WHEN i %% 1000 = 0 THEN %s - make_interval(secs => i %% 3600) END,
              CASE WHEN i %% 1000 <> 0 THEN %s - make_interval(secs => i) END, 1
            FROM generate_series(1, 1000000) AS i
            """,
            (subs, now, now, now),
        )
    conn.execute("VACUUM ANALYZE webhook_deliveries")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("database_url")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--no-webhooks", action="store_true")
    args = parser.parse_args()
    url = args.database_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as conn:
        if not args.no_webhooks:
            _seed_webhooks(conn)
        now = dt.datetime.now(dt.UTC)
        one_sub = conn.execute("SELECT id FROM webhook_subscriptions LIMIT 1").fetchone()
        queries = {
            "tasks": (
                _sql(_OPEN_TASKS),
                "SELECT count(*) FROM tasks WHERE status = 'Open'",
            ),
            "webhooks": (
                _sql(webhook_backlog_query(now)),
                "SELECT count(*) FROM webhook_deliveries WHERE subscription_id = "
                f"'{one_sub[0] if one_sub else uuid.uuid4()}' AND next_attempt_at <= now()",
            ),
        }
        times: dict[str, list[float]] = {f"{n} {k}": [] for n in queries for k in ("query", "base")}
        for _ in range(args.rounds):
            for name, (query, base) in queries.items():
                for kind, sql in (("query", query), ("base", base)):
                    start = time.perf_counter()
                    conn.execute(sql).fetchall()
                    times[f"{name} {kind}"].append(time.perf_counter() - start)
        RESULTS.mkdir(exist_ok=True)
        with (RESULTS / "metrics_queries_plans.txt").open("w") as plans:
            for name, (query, _) in queries.items():
                plan = conn.execute(f"EXPLAIN (ANALYZE, BUFFERS) {query}").fetchall()
                plans.write(f"== {name}\n{query}\n" + "\n".join(r[0] for r in plan) + "\n\n")
                print(f"== {name}\n" + "\n".join(r[0] for r in plan))
    print(f"\n{'query':<10} {'median ms':>10} {'p99 ms':>8} {'base median':>12} {'ratio':>6}")
    for name in queries:
        q, b = times[f"{name} query"], times[f"{name} base"]
        p99 = sorted(q)[max(0, int(len(q) * 0.99) - 1)]
        ratio = statistics.median(q) / statistics.median(b)
        print(
            f"{name:<10} {statistics.median(q) * 1000:>10.1f} {p99 * 1000:>8.1f} "
            f"{statistics.median(b) * 1000:>12.1f} {ratio:>6.2f}"
        )


if __name__ == "__main__":
    main()
