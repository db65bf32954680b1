"""Derived metrics: CPU per scored query in ``DerivedMetrics.record_queries``, SDK instruments vs folded.

Run: ``.venv/bin/python bench/bench_derived_metrics.py [--rounds 15] [--batches 200] [--quick]``

Contenders, on the same pre-built records, in rotating order within each round:

- ``sdk``: the module as it was before the fold (``git show OLD_REV:src/rag_otel/processor/derived_metrics.py``
  loaded as a temporary module): one OTel SDK ``Histogram.record`` per observation, counters summed
  per batch and one SDK ``Counter.add`` per distinct attribute set.
- ``hist-folded``: the same at HIST_REV, where only the histograms were folded (counters as ``sdk``).
- ``folded``: the current module, histograms and the three per-query counters folded.

A batch is 16 scored queries (duration + 4 quality axes + overall = 6 histogram observations each),
with a chat and an embeddings model each (query, token and cost counters, summed per batch), over
2 services x 2 models x 2 statuses. Each contender gets a fresh ``DerivedMetrics`` warmed up with a
few batches (so its series exist: the steady state). CPU is ``time.process_time()``; the table gives
medians over rounds and the ratio of medians. Also: ``record_scoring`` per call, and one /metrics
scrape (``prometheus_text``) with the series the run created, where the fold's cost moves to.
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from rag_otel.processor import derived_metrics as folded  # noqa: E402
from rag_otel.processor.normalize import ModelUsage  # noqa: E402
from rag_otel.records import AxisScore, QualityResult, QueryRecord  # noqa: E402

OLD_REV = "db790c6"  # the last commit with SDK histograms and counters in derived_metrics.py
HIST_REV = "2dc6976"  # histograms folded, counters still SDK
BATCH = 16
AXES = ("accuracy", "completeness", "relevance", "consistency")


def load_old(rev: str, name: str) -> ModuleType:
    """The module at ``rev``, imported as ``name`` (it only imports from rag_otel, which is unchanged)."""
    src = subprocess.run(["git", "-C", str(ROOT), "show", f"{rev}:src/rag_otel/processor/derived_metrics.py"],
                         check=True, capture_output=True, text=True).stdout
    path = Path(tempfile.mkdtemp()) / f"{name}.py"
    path.write_text(src)
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


def make_batches(n: int, seed: int = 5) -> list[list[tuple[QueryRecord, list[ModelUsage]]]]:
    rng = random.Random(seed)
    batches = []
    for b in range(n):
        batch = []
        for i in range(BATCH):
            model = rng.choice(("gpt-4o-mini", "claude-3-haiku"))
            seconds = rng.expovariate(1 / 1.5)
            quality = QualityResult({a: AxisScore(rng.random()) for a in AXES}, rng.random(), "lexical/1")
            record = QueryRecord(f"{b:016x}{i:016x}", f"{i:016x}", 1e9, 1e9 + seconds,
                                 service=rng.choice(("app", "billing")), models=[model], user_id=f"u{i % 7}",
                                 status=rng.choice(("ok", "ok", "ok", "error")),  # type: ignore[arg-type]
                                 latency_category="good", quality=quality)
            usage = [ModelUsage("text-embedding-3-small", "embeddings", 12, 0, 0.0000002),
                     ModelUsage(model, "chat", rng.randint(200, 2000), rng.randint(20, 300), 0.0004)]
            batch.append((record, usage))
        batches.append(batch)
    return batches


def cpu_per_query(dm: Any, batches: list) -> float:
    """µs of CPU per query for ``record_queries`` over all ``batches``."""
    t = time.process_time()
    for batch in batches:
        dm.record_queries(batch)
    return (time.process_time() - t) / (len(batches) * BATCH) * 1e6


def cpu_per_scoring(dm: Any, n: int) -> float:
    t = time.process_time()
    for i in range(n):
        dm.record_scoring(0.0005 + (i % 10) * 0.001, "lexical/1")
    return (time.process_time() - t) / n * 1e6


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--batches", type=int, default=200, help="batches of 16 queries per contender per round")
    ap.add_argument("--old-rev", default=OLD_REV)
    ap.add_argument("--hist-rev", default=HIST_REV)
    ap.add_argument("--quick", action="store_true", help="5 rounds of 50 batches")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.batches = 5, 50
    contenders = {"sdk": load_old(args.old_rev, "derived_metrics_sdk"),
                  "hist-folded": load_old(args.hist_rev, "derived_metrics_hist"), "folded": folded}
    batches = make_batches(args.batches)
    instances = {}
    for name, module in contenders.items():
        dm = module.DerivedMetrics(None)
        for batch in batches[:5]:  # warm-up: every series exists
            dm.record_queries(batch)
        instances[name] = dm
    per_query: dict[str, list[float]] = {n: [] for n in contenders}
    per_scoring: dict[str, list[float]] = {n: [] for n in contenders}
    names = list(contenders)
    started = time.time()
    for r in range(args.rounds):
        order = names[r % len(names):] + names[:r % len(names)]  # rotate who goes first
        for name in order:
            per_query[name].append(cpu_per_query(instances[name], batches))
            per_scoring[name].append(cpu_per_scoring(instances[name], 2000))
    scrape = {}
    for name in names:
        laps = []
        for _ in range(5):
            t = time.process_time()
            body = instances[name].prometheus_text()
            laps.append((time.process_time() - t) * 1e3)
        scrape[name] = (statistics.median(laps), body.count(b"\n"))
    base_q, base_s = statistics.median(per_query["sdk"]), statistics.median(per_scoring["sdk"])
    print(f"bench_derived_metrics: {args.rounds} interleaved rounds x {args.batches} batches of {BATCH} queries, "
          f"{time.time() - started:.0f} s wall, sdk = {args.old_rev}, hist-folded = {args.hist_rev}")
    print("| contender | record_queries µs/query (median, p25-p75) | ratio | record_scoring µs/call | ratio "
          "| /metrics scrape ms (lines) |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name in names:
        q, s = per_query[name], per_scoring[name]
        qs = statistics.quantiles(q, n=4) if len(q) > 1 else [q[0]] * 3
        print(f"| {name} | {statistics.median(q):.1f} ({qs[0]:.1f}-{qs[2]:.1f}) | "
              f"{statistics.median(q) / base_q:.3f} | {statistics.median(s):.1f} | {statistics.median(s) / base_s:.3f} "
              f"| {scrape[name][0]:.2f} ({scrape[name][1]}) |")
    for dm in instances.values():
        dm.shutdown()


if __name__ == "__main__":
    main()
