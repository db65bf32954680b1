"""Hash (or check) everything the processor outputs for the benchmark workloads, so a speed-up is proven exact.

    .venv/bin/python bench/pipeline_reference.py --write /tmp/pipe_ref.json   # before a change
    .venv/bin/python bench/pipeline_reference.py --check /tmp/pipe_ref.json   # after it: exit 1 on any diff
    RAG_OTEL_BENCH_SRC=/other/checkout/src ... --write ...                    # another tree's output

The synchronous pipeline (as bench_processor_icount.py runs it) over both workloads of
``bench_processor.make_bodies`` (``six``, ``mix``; 12 requests each, fixed seeds): per request the wire
bytes the exporter would send (``exporter.frame`` of every ResourceSpans), and every query record as the
store would get it, with the one field that is a measurement (the scorer's own duration) left out.
"""

from __future__ import annotations

import argparse
import dataclasses
import hashlib
import json
import os
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import bench_processor as bp  # noqa: E402  (puts RAG_OTEL_BENCH_SRC or this tree's src on the path)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402

from rag_otel.alerts.engine import AlertEngine  # noqa: E402
from rag_otel.processor.derived_metrics import DerivedMetrics  # noqa: E402
from rag_otel.processor.exporter import frame  # noqa: E402
from rag_otel.processor.pipeline import Pipeline  # noqa: E402
from rag_otel.quality import build_scorer  # noqa: E402

REQUESTS = 12


class Capture(bp.Framing):
    def __init__(self) -> None:
        super().__init__()
        self.frames: list[bytes] = []

    def export_spans(self, resource_spans: Any) -> None:
        self.frames.extend(frame(rs) for rs in resource_spans)


def _plain(obj: Any) -> Any:
    if dataclasses.is_dataclass(obj):
        return {f.name: _plain(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.name != "duration_s"}
    if isinstance(obj, (list, tuple)):
        return [_plain(x) for x in obj]
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items()}
    if isinstance(obj, bytes):
        return obj.hex()
    return obj


def digests(workload: str) -> dict[str, str]:
    cfg = bp.config()
    down = Capture()
    p = Pipeline(cfg, down, scorer=build_scorer(cfg.quality_assessment), alerts=AlertEngine.from_config(cfg),
                 metrics=DerivedMetrics(None), clock=lambda: 1000.0)
    records: list[Any] = []
    p.on_record.append(records.append)
    for body in bp.make_bodies(REQUESTS, seed=11, workload=workload):
        ready = p.assembler.add_request(ExportTraceServiceRequest.FromString(body).resource_spans)
        ready.extend(p.assembler.expire(1001.0))
        p._pending.acquire()  # as _submit_job does
        p._jobs += 1
        p._finish(ready)
    wire = hashlib.sha256(b"".join(down.frames)).hexdigest()
    recs = hashlib.sha256(json.dumps(_plain(records), sort_keys=True, default=repr).encode()).hexdigest()
    return {"wire": wire, "records": recs, "n_records": str(len(records)), "n_frames": str(len(down.frames))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    group = ap.add_mutually_exclusive_group(required=True)
    group.add_argument("--write", type=Path)
    group.add_argument("--check", type=Path)
    args = ap.parse_args()
    got = {wl: digests(wl) for wl in bp.WORKLOADS}
    if args.write:
        args.write.write_text(json.dumps(got, indent=1))
        print(f"wrote {args.write} ({os.environ.get('RAG_OTEL_BENCH_SRC') or 'this tree'}): {got}")
        return
    want = json.loads(args.check.read_text())
    bad = {wl: (want.get(wl), d) for wl, d in got.items() if want.get(wl) != d}
    for wl, (w, d) in bad.items():
        print(f"{wl}: DIFFERENT\n  want {w}\n  got  {d}")
    print("identical" if not bad else "outputs differ")
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
