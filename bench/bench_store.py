"""Store and analytics benchmark (issue 4).

1. Ingest: ``Store.write_records`` (Arrow conversion, write-time labels, hourly/daily/weekly rollup
   upserts, one transaction per batch) against two baselines over the same rows in the same run:
   plain ``executemany`` of row tuples and a plain Arrow insert, both into a bare ``queries`` table
   with no labels and no rollups.  Rounds interleave the contenders; medians are quoted.
2. Each analytics function over 1,000,000 query records (generated in DuckDB SQL, not Python), a
   30-day period read from raw rows, plus performance/cost over the same period from rollups.

    .venv/bin/python bench/bench_store.py [--rows 1000000] [--ingest 20000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

import duckdb

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag_otel.analytics import ANALYTICS, parse_period, run  # noqa: E402
from rag_otel.config import ModelObservation  # noqa: E402
from rag_otel.store import Store  # noqa: E402
from rag_otel.store.store import QUERY_COLUMNS  # noqa: E402
from tests.support.store_data import generate  # noqa: E402

END = datetime(2026, 11, 20)


def config() -> ModelObservation:
    cfg = ModelObservation()
    cfg.content.capture = "full"
    cfg.metrics_collection.retention_days = 3650  # the bench data is "old": keep it all
    cfg.dashboards.historical.retention_days = 3650
    return cfg


def bench_ingest(n: int, rounds: int, batch_sizes: list[int]) -> list[dict]:
    per_day = 1000
    recs = generate(seed=1, days=max(1, n // per_day), per_day=per_day).records[:n]
    results: dict[str, list[float]] = {}
    for _ in range(rounds):
        with tempfile.TemporaryDirectory() as d:
            for bs in batch_sizes:
                with Store.open(Path(d) / f"s{bs}", config=config()) as store:
                    t0 = time.perf_counter()
                    for i in range(0, n, bs):
                        store.write_records(recs[i:i + bs])
                    results.setdefault(f"Store.write_records, batch {bs}", []).append(n / (time.perf_counter() - t0))
                # baselines: the same rows, a bare table, no labels, no rollups
                with Store.open(Path(d) / f"b{bs}", config=config()) as store:
                    table = store.query_table(recs)
                    con = duckdb.connect(str(Path(d) / f"plain{bs}.duckdb"))
                    con.register("all_rows", table)
                    con.execute("CREATE TABLE q AS SELECT * FROM all_rows LIMIT 0")
                    con.unregister("all_rows")
                    t0 = time.perf_counter()
                    for i in range(0, n, bs):
                        con.register("b", table.slice(i, bs))
                        con.execute("INSERT INTO q SELECT * FROM b")
                        con.unregister("b")
                    results.setdefault(f"baseline: plain Arrow insert, batch {bs}", []).append(
                        n / (time.perf_counter() - t0))
                    rows = [tuple(r.values()) for r in table.slice(0, min(n, 500)).to_pylist()]
                    marks = ", ".join("?" * len(QUERY_COLUMNS))
                    t0 = time.perf_counter()
                    for i in range(0, len(rows), bs):
                        con.execute("BEGIN")
                        con.executemany(f"INSERT INTO q VALUES ({marks})", rows[i:i + bs])
                        con.execute("COMMIT")
                    results.setdefault(f"baseline: plain executemany, batch {bs}", []).append(
                        len(rows) / (time.perf_counter() - t0))
                    con.close()
    return [{"contender": k, "records_per_s": round(statistics.median(v), 1)} for k, v in results.items()]


def fill_million(store: Store, rows: int) -> float:
    """``rows`` query records over 30 days in SQL: 5,000 users, 3 models, 7 categories, 2,000 texts."""
    t0 = time.perf_counter()
    span_s = 30 * 86400
    start = END - timedelta(days=30)
    con = store._con
    con.execute("SELECT setseed(0.42)")
    con.execute(f"""
        INSERT INTO queries BY NAME
        SELECT lpad(printf('%x', i), 32, '0') AS trace_id, lpad(printf('%x', i), 32, '0') AS query_id,
               TIMESTAMP '{start}' + to_microseconds((i * {span_s} // {rows} * 1000000)::BIGINT) AS ts,
               exp(random() * 1.2 - 0.3) * (CASE m WHEN 0 THEN 2.0 ELSE 1.0 END) AS duration_s,
               CASE WHEN i % 2 = 0 THEN random() END AS ttfc_s,
               CASE WHEN i % 4 = 0 THEN 'faq' ELSE 'rag-app' END AS service,
               'user-' || (hash(i) % 5000) AS user_id, 's-' || (hash(i) % 5000) || '-' || (i // 2000) AS session_id,
               ['factual', 'how-to', 'troubleshooting', 'comparison', 'definition', 'chit-chat', 'other'][c + 1]
                   AS category,
               'topic ' || (t % 60) AS topic, ['gpt-4o', 'gpt-4o-mini', 'claude-haiku'][m + 1] AS model,
               [['gpt-4o', 'gpt-4o-mini', 'claude-haiku'][m + 1]] AS models, 'openai' AS provider,
               200 + hash(i * 3) % 1000 AS input_tokens, 20 + hash(i * 5) % 400 AS output_tokens,
               0 AS cached_input_tokens, 0 AS reasoning_tokens,
               CASE m WHEN 0 THEN 0.004 WHEN 1 THEN 0.0003 ELSE 0.0008 END * (0.5 + random()) AS cost_usd,
               CASE WHEN random() < 0.03 THEN 'error' ELSE 'ok' END AS status,
               list_filter(['hybrid_search', 'rerank', 'streaming'], lambda f: hash(i || f) % 2 = 0) AS features,
               random() AS q_accuracy, random() AS q_completeness, random() AS q_relevance,
               random() AS q_consistency, 0.6 + random() * 0.3 AS q_overall, 'good' AS q_grade, 'scored' AS q_status,
               2 + i % 3 AS documents, [] AS alerts,
               'question number ' || t || ' about topic ' || (t % 60) AS query_text,
               'question number ' || t || ' about topic ' || (t % 60) AS query_norm, 6 AS query_words
        FROM (SELECT i, (hash(i * 11) % 3)::BIGINT AS m, (hash(i * 13) % 7)::BIGINT AS c,
                     (hash(i * 17) % 2000)::BIGINT AS t
              FROM range({rows}) r(i))""")
    con.execute(f"""INSERT INTO system_samples SELECT TIMESTAMP '{start}' + to_seconds(k * 60), 'rag-app', 'h1',
        20 + random() * 60, 40 + random() * 20, 55, 1e5 * random(), NULL, NULL FROM range({span_s // 60}) r(k)""")
    con.execute("""INSERT INTO feedback SELECT trace_id, ts + INTERVAL 5 SECOND, NULL,
        CASE WHEN random() < 0.7 THEN 'up' ELSE 'down' END, NULL, user_id, query_id FROM queries USING SAMPLE 5%""")
    store.rebuild_rollups()
    con.execute("CHECKPOINT")
    return time.perf_counter() - t0


def bench_analytics(rows: int, rounds: int) -> tuple[float, list[dict]]:
    out = []
    with tempfile.TemporaryDirectory() as d, Store.open(d, config=config()) as store:
        fill_s = fill_million(store, rows)
        period = parse_period("30d", end=END)
        cases = [(name, {}) for name in ANALYTICS]
        cases += [("performance", {"source": "rollup"}), ("model_usage_and_cost", {"source": "rollup"})]
        for name, kw in cases:
            times = []
            for _ in range(rounds):
                t0 = time.perf_counter()
                result = run(name, store, period, **kw)
                times.append(time.perf_counter() - t0)
            json.dumps(result)
            label = name + (f" ({kw['source']})" if kw else "")
            out.append({"analysis": label, "median_s": round(statistics.median(times), 3),
                        "max_s": round(max(times), 3)})
    return fill_s, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ingest", type=int, default=20_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 2,000 ingested, 1 round")
    a = ap.parse_args()
    if a.quick:
        a.rows, a.ingest, a.rounds = 20_000, 2_000, 1
    ingest = bench_ingest(a.ingest, a.rounds, [100, 1000])
    print("| contender | records/s |\n|---|---:|")
    for row in ingest:
        print(f"| {row['contender']} | {row['records_per_s']:,.0f} |")
    fill_s, analytics = bench_analytics(a.rows, a.rounds)
    print(f"\n{a.rows:,} rows generated + rollups rebuilt in {fill_s:.1f} s\n")
    print("| analysis (30 days, 1M records) | median s | max s |\n|---|---:|---:|")
    for row in analytics:
        print(f"| {row['analysis']} | {row['median_s']} | {row['max_s']} |")
    if a.json:
        Path(a.json).write_text(json.dumps({"ingest": ingest, "analytics": analytics, "fill_s": fill_s}, indent=2))


if __name__ == "__main__":
    main()
