"""Run every ``bench/bench_*.py`` with ``--quick`` (a smoke run of all benchmarks; never in the tests).

    .venv/bin/python bench/run_all.py            # all of them, one after another
    .venv/bin/python bench/run_all.py client     # only those whose name contains "client"

Exit status: 0 when every benchmark exited 0, else 1 (each one's status is listed at the end; a
benchmark without a ``--quick`` option is listed as failing, not run for its full length).
"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent


def main(argv: list[str]) -> int:
    scripts = sorted(p for p in BENCH.glob("bench_*.py") if not argv or any(a in p.stem for a in argv))
    if not scripts:
        print(f"no benchmark matches {argv}", file=sys.stderr)
        return 1
    results: list[tuple[str, int, float]] = []
    for script in scripts:
        if "--quick" not in script.read_text():
            print(f"=== {script.name}: has no --quick option (not run)", flush=True)
            results.append((script.name, -1, 0.0))
            continue
        print(f"=== {script.name} --quick", flush=True)
        t0 = time.perf_counter()
        status = subprocess.run([sys.executable, str(script), "--quick"], cwd=BENCH.parent).returncode
        results.append((script.name, status, time.perf_counter() - t0))
    print("\n=== summary")
    for name, status, secs in results:
        if status == -1:
            print(f"FAIL {name} (no --quick option)")
        else:
            print(f"{'ok  ' if status == 0 else 'FAIL'} {name} ({secs:.0f} s, exit {status})")
    return 0 if all(s == 0 for _, s, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
