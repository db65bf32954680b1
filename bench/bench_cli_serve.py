"""What reading through a running serve costs the CLI, against reading the store directly.

The same store (generated queries, system samples, feedback) and the same commands, as a user
runs them (``rag-otel ...`` subprocesses, wall time): once while ``rag-otel serve`` holds the store
(the CLI asks its HTTP API) and once with serve stopped (the CLI opens the file). Rounds
interleave the two (start serve, run through it, stop it, run direct) so machine load falls on
both alike; medians and the ratio are quoted, and the outputs are checked to be identical.

    .venv/bin/python bench/bench_cli_serve.py [--days 14] [--per-day 1500] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from rag_otel.config import ModelObservation  # noqa: E402
from rag_otel.store import Store  # noqa: E402
from tests.support.otlp_io import free_port  # noqa: E402
from tests.support.serve_process import ServeProcess  # noqa: E402
from tests.support.store_data import fill, generate  # noqa: E402


def run(*args: str) -> tuple[float, str]:
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, "-m", "rag_otel.cli", *args], capture_output=True, text=True, timeout=600,
                       env={**os.environ, "COLUMNS": "200"})
    took = time.perf_counter() - t0
    if p.returncode != 0:
        raise SystemExit(f"rag-otel {' '.join(args)} failed: {p.stderr}")
    return took, p.stdout


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--days", type=int, default=14)
    ap.add_argument("--per-day", type=int, default=1500)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--json", default=None)
    a = ap.parse_args()
    end = datetime.now(timezone.utc).replace(microsecond=0)
    with tempfile.TemporaryDirectory() as tmp:
        data, conf = Path(tmp) / "data", Path(tmp) / "rag-otel.yaml"
        cfg = ModelObservation()
        cfg.content.capture = "full"
        ds = generate(seed=5, days=a.days, per_day=a.per_day, end=end)
        with Store.open(data, config=cfg) as store:
            fill(store, ds, batch=2000)
        conf.write_text(yaml.safe_dump({"model_observation": {
            "content": {"capture": "full"},
            "processor": {"http": f"127.0.0.1:{free_port()}", "data_dir": str(data), "shutdown_grace": 5},
            "reporting": {"daily_report": {"enabled": False}, "weekly_report": {"enabled": False, "day": "monday"}},
        }}))
        window = ["--from", (end - timedelta(days=a.days)).isoformat(), "--to", end.isoformat()]
        day = (end - timedelta(days=1)).date().isoformat()
        commands = {
            "analytics all --json": ["analytics", "all", "--json", *window, "--config", str(conf)],
            "analytics performance (table)": ["analytics", "performance", *window, "--config", str(conf)],
            "report daily json": ["report", "daily", "--date", day, "--format", "json", "--config", str(conf),
                                  "--out", str(Path(tmp) / "out")],
        }
        times: dict[str, dict[str, list[float]]] = {k: {"serve": [], "store": []} for k in commands}
        for _ in range(a.rounds):
            with ServeProcess(conf, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0"):
                served = {k: run(*c) for k, c in commands.items()}
            direct = {k: run(*c) for k, c in commands.items()}
            for k in commands:
                times[k]["serve"].append(served[k][0])
                times[k]["store"].append(direct[k][0])
                if not k.startswith("report"):
                    assert served[k][1] == direct[k][1], f"{k}: outputs differ"
    rows = []
    for k, t in times.items():
        s, d = statistics.median(t["serve"]), statistics.median(t["store"])
        rows.append({"command": k, "store_median_s": round(d, 3), "serve_median_s": round(s, 3),
                     "ratio": round(s / d, 2)})
    print(f"{a.days * a.per_day} queries, {a.rounds} interleaved rounds, wall time of the whole command")
    print("| command | over the store s | through serve s | ratio |\n|---|---:|---:|---:|")
    for r in rows:
        print(f"| {r['command']} | {r['store_median_s']} | {r['serve_median_s']} | {r['ratio']}x |")
    if a.json:
        Path(a.json).write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
