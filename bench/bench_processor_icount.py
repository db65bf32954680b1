"""Processor work per trace in CPU instructions (valgrind's callgrind): a measure the machine's load cannot move.

Run: ``.venv/bin/python bench/bench_processor_icount.py [--base /path/to/main/src] [--workloads six,mix]
[--traces 400]``

This shared 2-core machine swings ±25% between identical timed runs (bench/README.md), so a 5% change
cannot be seen by timing.  Instructions retired are the same for the same code and inputs whatever else
runs.  Each measurement is the synchronous pipeline, no threads: decode, assembly, ``Pipeline._finish``
(normalize, lexical scoring of every query, alerts, stripping, enrichment, derived metrics, regrouping,
the exporter's framing) over ``bench_processor.make_bodies``, after 8 warm-up requests (memos and caches
filled as in a running processor) and a full collection.  Per side it runs twice, with 0 and with about
``--traces`` measured traces, and reports the difference per trace, so imports and start-up cancel out.

It counts instructions, not time: cache misses, branch mispredictions and the GIL handoff between the
pipeline's threads are not in it, and the two need not move together (a mypyc build of the hot modules:
1.17x fewer instructions, 1.10x less CPU time).  ``bench_processor_ab.py`` times the real threaded
pipeline.  Needs valgrind (Debian package); each run takes one to a few minutes.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from callgrind import instructions

HERE = Path(__file__).resolve().parent
WARM_REQUESTS = 8


def inner(workload: str, requests: int, made: int) -> None:
    """The measured process: warm up, then feed ``requests`` of ``made`` bodies through the synchronous pipeline."""
    import bench_processor as bp
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

    from rag_otel.alerts.engine import AlertEngine
    from rag_otel.processor.derived_metrics import DerivedMetrics
    from rag_otel.processor.pipeline import Pipeline, raise_gc_thresholds
    from rag_otel.quality import build_scorer

    raise_gc_thresholds()
    cfg = bp.config()
    p = Pipeline(cfg, bp.Framing(), scorer=build_scorer(cfg.quality_assessment),
                 alerts=AlertEngine.from_config(cfg), metrics=DerivedMetrics(None))  # not started: no threads

    def feed(bodies: list[bytes]) -> None:
        for body in bodies:
            ready = p.assembler.add_request(ExportTraceServiceRequest.FromString(body).resource_spans)
            ready.extend(p.assembler.expire())
            p._pending.acquire()  # what _submit_job does before handing a job over
            p._jobs += 1
            p._finish(ready)

    # one stream of bodies, made whole in both runs (so making them cancels out): the measured ones go on
    # numbering traces after the warm-up's (two make_bodies calls both start at trace 1, so every measured
    # trace would be a "late" straggler of a released one, never scored)
    bodies = bp.make_bodies(WARM_REQUESTS + made, seed=1, workload=workload)
    feed(bodies[:WARM_REQUESTS])
    gc.collect()
    feed(bodies[WARM_REQUESTS:WARM_REQUESTS + requests])
    os._exit(0)  # no interpreter teardown in the count


def count(src: str, workload: str, requests: int, made: int) -> int:
    return instructions(__file__, ["--inner", workload, str(requests), str(made)], src)


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--inner":
        sys.path.insert(0, str(HERE))
        inner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--base", help="src directory of a baseline checkout (main); omitted: this tree only")
    ap.add_argument("--traces", type=int, default=400, help="measured traces per workload (about)")
    ap.add_argument("--workloads", default="six,mix")
    args = ap.parse_args()
    import bench_processor as bp

    sides = {"this": str(HERE.parent / "src")}
    if args.base:
        sides = {"base": args.base, **sides}
    workloads = args.workloads.split(",")
    requests = {wl: max(1, round(args.traces / bp.WORKLOADS[wl][0])) for wl in workloads}
    jobs = [(side, src, wl, n) for wl in workloads for side, src in sides.items() for n in (0, requests[wl])]
    with ThreadPoolExecutor(2) as pool:  # one valgrind per core
        counts = dict(zip([(s, w, n) for s, _, w, n in jobs],
                          pool.map(lambda j: count(j[1], j[2], j[3], requests[j[2]]), jobs), strict=True))
    for wl in workloads:
        traces = requests[wl] * bp.WORKLOADS[wl][0]
        per = {s: (counts[(s, wl, requests[wl])] - counts[(s, wl, 0)]) / traces for s in sides}
        line = "  ".join(f"{s} {v / 1e6:.3f}M" for s, v in per.items())
        ratio = f"  base/this {per['base'] / per['this']:.3f}" if "base" in per else ""
        print(f"{wl}: instructions per trace: {line}{ratio}", flush=True)


if __name__ == "__main__":
    main()
