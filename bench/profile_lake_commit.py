"""Where one lake write's time goes (issue 12, ingest): each statement of ``write_records`` timed apart.

One writer, batches of ``--batch`` records, into a fresh lake (Debian's PostgreSQL in a temp dir, as the
tests start it) and into a DuckDB file in the same run: building the Arrow tables in Python, the
``queries`` insert (a Parquet file), the rollup insert, the ``query_details`` insert, and the COMMIT
(the catalog transaction in PostgreSQL).  Medians in milliseconds per batch.

    .venv/bin/python bench/profile_lake_commit.py [--batch 100] [--batches 30]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_store import config  # noqa: E402

from rag_otel.store import Store  # noqa: E402
from rag_otel.store.lake import LakeStore  # noqa: E402
from rag_otel.store.store import QUERY_COLUMNS, _rollup_sql  # noqa: E402
from tests.support.postgres import Postgres  # noqa: E402
from tests.support.store_data import generate  # noqa: E402


def profile(store: Store, records: list, batch: int) -> dict[str, float]:
    times: dict[str, list[float]] = defaultdict(list)
    con = store._con

    def timed(name: str, sql: str) -> None:
        t0 = time.perf_counter()
        con.execute(sql)
        times[name].append((time.perf_counter() - t0) * 1000)

    for i in range(0, len(records), batch):
        chunk = records[i:i + batch]
        t0 = time.perf_counter()
        table, details = store.query_table(chunk), store.details_table(chunk)
        times["arrow tables (python)"].append((time.perf_counter() - t0) * 1000)
        t_all = time.perf_counter()
        con.execute("BEGIN TRANSACTION")
        con.register("_batch", table)
        con.register("_details", details)
        timed("insert queries", f"INSERT INTO queries ({', '.join(QUERY_COLUMNS)}) SELECT * FROM _batch")
        timed("insert rollups", _rollup_sql(store.levels, "_batch", upsert=store.upsert_rollups))
        timed("insert query_details", "INSERT INTO query_details SELECT * FROM _details")
        timed("commit", "COMMIT")
        con.unregister("_batch")
        con.unregister("_details")
        times["whole transaction"].append((time.perf_counter() - t_all) * 1000)
    return {k: round(statistics.median(v), 1) for k, v in times.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--batch", type=int, default=100)
    ap.add_argument("--batches", type=int, default=30)
    args = ap.parse_args()
    n = args.batch * args.batches
    records = generate(seed=3, days=max(1, n // 1000), per_day=1000).records[:n]
    with Postgres() as pg, tempfile.TemporaryDirectory() as d:
        lake = LakeStore.open_lake(f"ducklake:postgres:{pg.conninfo}", data_path=str(Path(d) / "lake"),
                                   config=config())
        file = Store.open(Path(d) / "file", config=config())
        for label, store in (("file", file), ("lake", lake)):
            print(f"{label}, batch {args.batch}: {profile(store, records, args.batch)}", flush=True)
            store.close()


if __name__ == "__main__":
    main()
