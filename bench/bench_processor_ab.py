"""Processor end to end, this checkout against another (main), alternating processes on each workload.

Run: ``.venv/bin/python bench/bench_processor_ab.py --base /path/to/main/src [--rounds 5] [--requests 60]``

The machine is shared and noisy, so each round runs one process of each side in turn (order
alternating between rounds) on the same workload and the same ``bench_processor.py`` code (only
``rag_otel`` comes from the two checkouts, via ``RAG_OTEL_BENCH_SRC``); reported: spans per CPU-second
(lexical scoring of every query), median and range per side, and the median of the per-round ratios.
Workloads (bench/otlp_workload.py): ``six``, today's six-span RAG traces; ``mix``, RAG traces with 20
non-GenAI spans each (FastAPI server and per-chunk sends, httpx, SQLAlchemy, redis).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def one(src: str, workload: str, requests: int) -> float:
    env = {**os.environ, "RAG_OTEL_BENCH_SRC": src}
    out = subprocess.run([sys.executable, str(HERE / "bench_processor.py"), "--e2e", workload,
                          "--requests", str(requests)], env=env, check=True, capture_output=True, text=True)
    return float(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", required=True, help="src directory of the baseline checkout (main)")
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=60, help="requests of 300 spans each per process")
    ap.add_argument("--workloads", default="six,mix")
    args = ap.parse_args()
    head = str(HERE.parent / "src")
    for workload in args.workloads.split(","):
        base, this, ratios = [], [], []
        for r in range(args.rounds):
            if r % 2:
                t, b = one(head, workload, args.requests), one(args.base, workload, args.requests)
            else:
                b, t = one(args.base, workload, args.requests), one(head, workload, args.requests)
            base.append(b)
            this.append(t)
            ratios.append(t / b)
            print(f"  {workload} round {r + 1}: base {b:,.0f}  this {t:,.0f}  ratio {t / b:.2f}", flush=True)
        print(f"{workload}: base {statistics.median(base):,.0f} ({min(base):,.0f}-{max(base):,.0f}), "
              f"this {statistics.median(this):,.0f} ({min(this):,.0f}-{max(this):,.0f}) spans/CPU-s; "
              f"ratio median {statistics.median(ratios):.2f} ({min(ratios):.2f}-{max(ratios):.2f})", flush=True)


if __name__ == "__main__":
    main()
