"""Fleet store benchmark (issue 12): the DuckLake on a PostgreSQL catalog beside the embedded DuckDB file.

1. Ingest per replica: ``Store.write_records`` at batch 100 from 1 and from 3 processes writing one
   lake at once (each process is one replica's writer), against the embedded DuckDB file's writer in
   the same run (the baseline); rounds alternate the contenders; medians are quoted.
2. Each analysis over 1,000,000 query records in the lake beside the same analysis over the same
   records in a DuckDB file (``bench_store.fill_million``), alternating, medians and worst rounds;
   then one fleet-scope alert evaluation per rule (the leader's store reads) over the same records.

PostgreSQL is Debian's, started in a temporary directory as the tests do (tests/support/postgres.py).

    .venv/bin/python bench/bench_fleet.py [--rows 1000000] [--ingest 3000] [--rounds 3] [--batch 100]
                                          [--no-analytics | --only-alerts] [--json out.json]

``--batch 0`` measures ingest through the processor's ``StoreWriter`` (what a replica sustains)
instead of ``write_records`` calls of a fixed size.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import END, config, fill_million  # noqa: E402

from rag_otel.analytics import ANALYTICS, parse_period, run  # noqa: E402
from rag_otel.store import Store  # noqa: E402
from rag_otel.store.lake import LakeStore  # noqa: E402
from rag_otel.store.writer import StoreWriter  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.store_data import generate  # noqa: E402

BATCH = 100


def _records(n: int, seed: int) -> list:
    return generate(seed=seed, days=max(1, n // 1000), per_day=1000).records[:n]


def _ingest_config() -> Any:
    """The ingest contenders' config; ``--no-rollups`` (an experiment: what appending the per-batch
    rollup rows costs a commit) writes no rollup levels."""
    cfg = config()
    if os.environ.get("RAG_OTEL_BENCH_NO_ROLLUPS"):
        cfg.dashboards.historical.aggregation_levels = []
    return cfg


def _ingest(store: Store, recs: list, batch: int) -> tuple[float, float]:
    """records/s: ``write_records`` in batches of ``batch``, or (``batch`` 0) through the processor's
    ``StoreWriter`` at its default settings (batch_size 100, at least the store's ``min_batch`` per
    commit, a backlog drained in up to 10x bigger commits), every record queued at once.  Also records
    per CPU-second of this process: three writers on this 2-core machine compete for CPU, which
    replicas on their own hosts do not, so the wall-clock rate alone mixes both effects."""
    t0, c0 = time.perf_counter(), time.process_time()
    if batch:
        for i in range(0, len(recs), batch):
            store.write_records(recs[i:i + batch])
    else:
        w = StoreWriter(store, retention_every=None, max_queue=len(recs) + 10).start()
        for r in recs:
            w.on_record(r)
        assert w.flush(900) and w.stats.written == len(recs), w.stats
        w.stop()
    return len(recs) / (time.perf_counter() - t0), len(recs) / (time.process_time() - c0)


def _lake_writer(url: str, data_path: str, n: int, seed: int, batch: int, start: mp.Event, out: mp.Queue) -> None:
    recs = _records(n, seed)
    with LakeStore.open_lake(url, data_path=data_path, config=_ingest_config()) as store:
        start.wait()
        out.put(_ingest(store, recs, batch))


def lake_ingest(url: str, data_path: str, n: int, replicas: int, batch: int = BATCH) -> list[float]:
    """records/s of each of ``replicas`` processes writing ``n`` records each into one lake at once."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_lake_writer, args=(url, data_path, n, 100 + i, batch, start, out))
             for i in range(replicas)]
    for p in procs:
        p.start()
    time.sleep(2.0 + 2.0 * replicas)  # every writer attached (the lake open is seconds) before the clock starts
    start.set()
    rates = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    return rates


def file_ingest(n: int, d: str, batch: int = BATCH) -> float:
    recs = _records(n, 7)
    with Store.open(Path(d) / f"file-{time.monotonic_ns()}", config=_ingest_config()) as store:
        return _ingest(store, recs, batch)


def bench_ingest(pg: Postgres, n: int, rounds: int, d: str, batch: int = BATCH,
                 baseline_batch: int = BATCH) -> dict[str, list[tuple[float, float]]]:
    """Per writer (records/s, records per CPU-s); the file at ``baseline_batch`` is the baseline."""
    res: dict[str, list[tuple[float, float]]] = {f"file (batch {baseline_batch})": [], "lake x1": [], "lake x3": []}
    for r in range(rounds):
        res[f"file (batch {baseline_batch})"].append(file_ingest(n, d, baseline_batch))
        for replicas in (1, 3):
            url = f"ducklake:postgres:{pg.createdb(f'ingest_{batch}_{r}_{replicas}')}"
            rates = lake_ingest(url, str(Path(d) / f"lake-{batch}-{r}-{replicas}"), n, replicas, batch)
            res[f"lake x{replicas}"].extend(rates)
        print(f"  ingest round {r + 1}: " + ", ".join(
            f"{k} {statistics.median(x[0] for x in v):.0f}/s ({statistics.median(x[1] for x in v):.0f}/CPU-s)"
            for k, v in res.items()), flush=True)
    return res


def bench_analytics(pg: Postgres, rows: int, rounds: int, d: str, only_alerts: bool = False) -> list[dict]:
    url = f"ducklake:postgres:{pg.createdb('analytics')}"
    lake = LakeStore.open_lake(url, data_path=str(Path(d) / "lake-analytics"), config=config())
    file = Store.open(Path(d) / "file-analytics", config=config())
    t0 = time.perf_counter()
    fill_million(file, rows)
    file_fill = time.perf_counter() - t0
    # the same rows into the lake: copied from the file (one INSERT per table), rollups rebuilt there
    t0 = time.perf_counter()
    file.close()
    con = lake._con
    con.execute(f"ATTACH '{Path(d) / 'file-analytics' / 'rag-otel.duckdb'}' AS src (READ_ONLY)")
    for table in ("queries", "system_samples", "feedback"):
        con.execute(f"INSERT INTO lake.{table} SELECT * FROM src.{table}")
    con.execute("DETACH src")
    lake.rebuild_rollups()
    lake_fill = time.perf_counter() - t0
    file = Store.open(Path(d) / "file-analytics", read_only=True, config=config())
    print(f"  filled {rows} records: file {file_fill:.1f} s, lake {lake_fill:.1f} s", flush=True)
    period = parse_period("30d", end=END)
    cases = [(name, {}) for name in ANALYTICS]
    cases += [("performance", {"source": "rollup"}), ("model_usage_and_cost", {"source": "rollup"})]
    if only_alerts:
        cases = []
    out = []
    for name, kw in cases:
        times: dict[str, list[float]] = {"lake": [], "file": []}
        results = {}
        for _ in range(rounds):
            for label, store in (("lake", lake), ("file", file)):
                t0 = time.perf_counter()
                results[label] = run(name, store, period, **kw)
                times[label].append(time.perf_counter() - t0)
        same = json.dumps(results["lake"], sort_keys=True, default=str) == json.dumps(results["file"], sort_keys=True,
                                                                                      default=str)
        label = name + (f" ({kw['source']})" if kw else "")
        row = {"analysis": label, "lake_median_s": round(statistics.median(times["lake"]), 3),
               "lake_max_s": round(max(times["lake"]), 3), "file_median_s": round(statistics.median(times["file"]), 3),
               "ratio": round(statistics.median(times["lake"]) / statistics.median(times["file"]), 2),
               "same_result": same}
        print(f"  {row}", flush=True)
        out.append(row)
    out += bench_alert_rules(lake, file, rounds)
    lake.close()
    file.close()
    return out


ALERT_RULES = [
    {"name": "errors_5m", "metric": "error_rate", "operator": "gt", "threshold": 0.05},
    {"name": "p95_15m", "metric": "p95_response_time", "operator": "gt", "threshold": 8, "window": "15m"},
    {"name": "cost_per_day", "metric": "cost_total", "operator": "gt", "threshold": 100, "window": "1d"},
    {"name": "unscored_1h", "metric": "unscored_rate", "operator": "gt", "threshold": 0.5, "window": "1h"},
    {"name": "quality_drift_7d", "metric": "quality_overall", "operator": "lt", "window": "1h",
     "baseline": {"window": "7d", "factor": 0.8, "min_samples": 100}},
]


def bench_alert_rules(lake: LakeStore, file: Store, rounds: int) -> list[dict]:
    """One fleet-scope evaluation per rule (the leader's store reads + state) over the same records,
    at the data's end; a new minute each round, so a baseline is read every time (not from its cache)."""
    from rag_otel.alerts.fleet import FleetAlertEngine
    from rag_otel.config import AlertRule
    from rag_otel.store.alert_state import MemoryAlertState

    now = END.timestamp()
    out = []
    for spec in ALERT_RULES:
        rule = AlertRule.model_validate(spec)
        times: dict[str, list[float]] = {"lake": [], "file": []}
        for i in range(rounds):
            for label, store in (("lake", lake), ("file", file)):
                eng = FleetAlertEngine([rule], store=store, state=MemoryAlertState(), leads=lambda: True)
                t0 = time.perf_counter()
                eng.evaluate(now - 60 * i)
                times[label].append(time.perf_counter() - t0)
        row = {"analysis": f"fleet alert rule {rule.name}", "lake_median_s": round(statistics.median(times["lake"]), 3),
               "lake_max_s": round(max(times["lake"]), 3), "file_median_s": round(statistics.median(times["file"]), 3),
               "ratio": round(statistics.median(times["lake"]) / statistics.median(times["file"]), 2)}
        print(f"  {row}", flush=True)
        out.append(row)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ingest", type=int, default=3000, help="records each writer writes per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--batch", type=int, default=BATCH,
                    help="records per write_records call; 0: through the processor's StoreWriter")
    ap.add_argument("--baseline-batch", type=int, default=BATCH, help="the DuckDB file's batch (the baseline)")
    ap.add_argument("--no-analytics", action="store_true", help="the ingest part only")
    ap.add_argument("--no-rollups", action="store_true", help="experiment: ingest without the rollup rows")
    ap.add_argument("--only-alerts", action="store_true", help="of the second part, the fleet alert rules only")
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 500 ingested, 1 round")
    args = ap.parse_args()
    if args.no_rollups:
        os.environ["RAG_OTEL_BENCH_NO_ROLLUPS"] = "1"  # the spawned lake writers read it too
    if args.quick:
        args.rows, args.ingest, args.rounds = 20_000, 500, 1
    with Postgres() as pg, tempfile.TemporaryDirectory() as d:
        how = f"batch {args.batch}" if args.batch else "through StoreWriter (batch_size 100, store min_batch)"
        ingest = {}
        if not args.only_alerts:
            print(f"ingest: {args.ingest} records per writer, {how}, {args.rounds} rounds", flush=True)
            ing = bench_ingest(pg, args.ingest, args.rounds, d, args.batch, args.baseline_batch)
            ingest = {k: {"median_records_per_s": round(statistics.median(x[0] for x in v), 1),
                          "median_records_per_cpu_s": round(statistics.median(x[1] for x in v), 1),
                          "all": [round(x[0]) for x in v]} for k, v in ing.items()}
            print(json.dumps(ingest, indent=1), flush=True)
        analytics = []
        if not args.no_analytics:
            print(f"analytics over {args.rows} records, {args.rounds} rounds", flush=True)
            analytics = bench_analytics(pg, args.rows, args.rounds, d, args.only_alerts)
    if args.json:
        Path(args.json).write_text(json.dumps({"ingest": ingest, "analytics": analytics}, indent=1))


if __name__ == "__main__":
    main()
