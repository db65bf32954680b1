"""Daily report benchmark (issue 4): a report over a store of 1,000,000 query records.

The store is filled in DuckDB SQL by ``bench_store.fill_million`` (the analytics benchmark's data),
then two layouts are measured:

* ``30 days``: the million records spread over 30 days; the daily report reads one day (~33,000).
* ``one day``: the same million records squeezed into the reported day (the worst case).

Baseline, measured in the same run on the same store: the analytics calls a report reads
(performance, quality, query patterns, feature usage, model usage and cost) made directly.
Contenders: ``build_report`` without charts, with charts, and ``run_report`` writing JSON,
Markdown, HTML and PNG files.  Rounds interleave the contenders; medians and ratios are quoted.

    .venv/bin/python bench/bench_reports.py [--rows 1000000] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path[:0] = [str(HERE.parent), str(HERE)]

from bench_store import END, config, fill_million  # noqa: E402

from rag_otel.analytics import feature_usage, model_usage_and_cost, performance, quality, query_patterns  # noqa: E402
from rag_otel.reports import build_report, report_period, run_report  # noqa: E402
from rag_otel.store import Store  # noqa: E402

DAY = (END - timedelta(days=1)).date()  # the last full day of the generated data


def squeeze_into_day(store: Store) -> None:
    """Move every record into ``DAY`` keeping their order (30 days -> 24 hours), then rebuild rollups."""
    store._con.execute(f"""UPDATE queries SET ts = TIMESTAMP '{DAY}' +
        to_microseconds(((epoch_us(ts) - epoch_us(TIMESTAMP '{END - timedelta(days=30)}')) // 30)::BIGINT)""")
    store.rebuild_rollups()
    store._con.execute("CHECKPOINT")


def contenders(store: Store, out: Path) -> dict[str, Callable[[], object]]:
    period = report_period("daily", DAY).as_period()

    def analytics_alone() -> None:
        performance(store, period)
        quality(store, period, worst=5)
        query_patterns(store, period, top_topics=10)
        feature_usage(store, period)
        model_usage_and_cost(store, period)

    return {
        "baseline: the analytics a report reads, called directly": analytics_alone,
        "build_report, no charts": lambda: build_report(store, "daily", DAY, charts=False),
        "build_report with the 4 charts": lambda: build_report(store, "daily", DAY),
        "run_report: build + JSON, Markdown, HTML, PNG files": lambda: run_report(
            store, "daily", DAY, out=out, formats=["json", "markdown", "html", "png"]),
    }


def measure(store: Store, out: Path, rounds: int) -> list[dict]:
    cases = contenders(store, out)
    for fn in cases.values():  # warm: imports, fonts, DuckDB caches
        fn()
    times: dict[str, list[float]] = {k: [] for k in cases}
    cpu: dict[str, list[float]] = {k: [] for k in cases}
    for r in range(rounds):
        order = list(cases) if r % 2 == 0 else list(reversed(cases))
        for name in order:
            t0, c0 = time.perf_counter(), time.process_time()
            cases[name]()
            times[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)  # all threads of this process (DuckDB's too)
    base = statistics.median(next(iter(times.values())))
    return [{"contender": k, "median_s": round(statistics.median(v), 3), "max_s": round(max(v), 3),
             "cpu_s": round(statistics.median(cpu[k]), 3), "vs_baseline": round(statistics.median(v) / base, 2)}
            for k, v in times.items()]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 1 round")
    a = ap.parse_args()
    if a.quick:
        a.rows, a.rounds = 20_000, 1
    results = {}
    with tempfile.TemporaryDirectory() as d, Store.open(Path(d) / "data", config=config()) as store:
        fill_s = fill_million(store, a.rows)
        print(f"{a.rows:,} rows generated in {fill_s:.1f} s", file=sys.stderr)
        for layout in ("30 days", "one day"):
            if layout == "one day":
                squeeze_into_day(store)
            n = store.sql("SELECT count(*) FROM queries WHERE ts >= ? AND ts < ?",
                          [report_period("daily", DAY).start, report_period("daily", DAY).end])[0][0]
            results[layout] = {"rows_in_day": n, "rows": measure(store, Path(d) / "out", a.rounds)}
    for layout, res in results.items():
        print(f"\n{a.rows:,} records, {layout}: the daily report of {DAY} reads {res['rows_in_day']:,} of them\n")
        print("| contender | median s | max s | CPU s (median) | vs baseline |\n|---|---:|---:|---:|---:|")
        for row in res["rows"]:
            print(f"| {row['contender']} | {row['median_s']} | {row['max_s']} | {row['cpu_s']} | "
                  f"{row['vs_baseline']}x |")
    if a.json:
        Path(a.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
