"""Instructions a Python run retires, counted by valgrind's callgrind: the same for the same code and inputs
whatever else the machine runs (the icount benchmarks use it; timings here swing ±25%)."""

from __future__ import annotations

import os
import re
import subprocess
import sys


def instructions(script: str, args: list[str], src: str) -> int:
    """Instructions of ``python script *args`` with ``RAG_OTEL_BENCH_SRC=src`` (the rag_otel to measure).

    PYTHONHASHSEED is fixed: set and dict orders of strings, and so the work done, repeat run to run (~1% apart
    otherwise)."""
    env = {**os.environ, "RAG_OTEL_BENCH_SRC": src, "PYTHONHASHSEED": "0"}
    out = subprocess.run(["valgrind", "--tool=callgrind", "--callgrind-out-file=/dev/null", sys.executable,
                          script, *args], env=env, check=True, capture_output=True, text=True)
    m = re.search(r"Collected : (\d+)", out.stderr)
    if m is None:
        raise SystemExit(f"no instruction count from valgrind:\n{out.stderr[-2000:]}")
    return int(m.group(1))
