"""Fleet store benchmark (issue 12): the DuckLake on a PostgreSQL catalog beside the embedded DuckDB file.

1. Ingest per replica: ``Store.write_records`` at batch 100 from 1 and from 3 processes writing one
   lake at once (each process is one replica's writer), against the embedded DuckDB file's writer in
   the same run (the baseline); rounds alternate the contenders; medians are quoted.
2. Each analysis over 1,000,000 query records in the lake beside the same analysis over the same
   records in a DuckDB file (``bench_store.fill_million``), alternating, medians and worst rounds.

PostgreSQL is Debian's, started in a temporary directory as the tests do (tests/support/postgres.py).

    .venv/bin/python bench/bench_fleet.py [--rows 1000000] [--ingest 3000] [--rounds 3] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import END, config, fill_million  # noqa: E402

from rag_otel.analytics import ANALYTICS, parse_period, run  # noqa: E402
from rag_otel.store import Store  # noqa: E402
from rag_otel.store.lake import LakeStore  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.store_data import generate  # noqa: E402

BATCH = 100


def _records(n: int, seed: int) -> list:
    return generate(seed=seed, days=max(1, n // 1000), per_day=1000).records[:n]


def _lake_writer(url: str, data_path: str, n: int, seed: int, start: mp.Event, out: mp.Queue) -> None:
    recs = _records(n, seed)
    with LakeStore.open_lake(url, data_path=data_path, config=config()) as store:
        start.wait()
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            store.write_records(recs[i:i + BATCH])
        out.put(n / (time.perf_counter() - t0))


def lake_ingest(url: str, data_path: str, n: int, replicas: int) -> list[float]:
    """records/s of each of ``replicas`` processes writing ``n`` records each into one lake at once."""
    ctx = mp.get_context("spawn")
    start, out = ctx.Event(), ctx.Queue()
    procs = [ctx.Process(target=_lake_writer, args=(url, data_path, n, 100 + i, start, out))
             for i in range(replicas)]
    for p in procs:
        p.start()
    time.sleep(2.0 + 2.0 * replicas)  # every writer attached (the lake open is seconds) before the clock starts
    start.set()
    rates = [out.get(timeout=900) for _ in procs]
    for p in procs:
        p.join()
    return rates


def file_ingest(n: int, d: str) -> float:
    recs = _records(n, 7)
    with Store.open(Path(d) / f"file-{time.monotonic_ns()}", config=config()) as store:
        t0 = time.perf_counter()
        for i in range(0, n, BATCH):
            store.write_records(recs[i:i + BATCH])
        return n / (time.perf_counter() - t0)


def bench_ingest(pg: Postgres, n: int, rounds: int, d: str) -> dict[str, list[float]]:
    res: dict[str, list[float]] = {"file": [], "lake x1": [], "lake x3": []}
    for r in range(rounds):
        res["file"].append(file_ingest(n, d))
        for replicas in (1, 3):
            url = f"ducklake:postgres:{pg.createdb(f'ingest_{r}_{replicas}')}"
            rates = lake_ingest(url, str(Path(d) / f"lake-{r}-{replicas}"), n, replicas)
            res[f"lake x{replicas}"].extend(rates)
        print(f"  ingest round {r + 1}: " + ", ".join(f"{k} {statistics.median(v):.0f}/s" for k, v in res.items()),
              flush=True)
    return res


def bench_analytics(pg: Postgres, rows: int, rounds: int, d: str) -> list[dict]:
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
    lake.close()
    file.close()
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--ingest", type=int, default=3000, help="records each writer writes per round")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--json", default=None)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20,000 rows, 500 ingested, 1 round")
    args = ap.parse_args()
    if args.quick:
        args.rows, args.ingest, args.rounds = 20_000, 500, 1
    with Postgres() as pg, tempfile.TemporaryDirectory() as d:
        print(f"ingest: {args.ingest} records per writer, batch {BATCH}, {args.rounds} rounds", flush=True)
        ing = bench_ingest(pg, args.ingest, args.rounds, d)
        ingest = {k: {"median_records_per_s": round(statistics.median(v), 1), "all": [round(x) for x in v]}
                  for k, v in ing.items()}
        print(json.dumps(ingest, indent=1), flush=True)
        print(f"analytics over {args.rows} records, {args.rounds} rounds", flush=True)
        analytics = bench_analytics(pg, args.rows, args.rounds, d)
    if args.json:
        Path(args.json).write_text(json.dumps({"ingest": ingest, "analytics": analytics}, indent=1))


if __name__ == "__main__":
    main()
