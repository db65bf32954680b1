"""Evaluation results as span events, log records or both: CPU per scored query, against attributes only.

Run: ``.venv/bin/python bench/bench_evaluation_events.py [--rounds 15] [--n 2000] [--quick]``

Per scored query (4 axes with label and a content-free explanation, as the lexical scorer makes them), on
fresh copies of the same root span, in rotating order within each round:

- ``none``: the root's enrichment attributes only (``enrich_root(..., span_events=False)``), then the span
  encoded: the baseline every mode pays.
- ``span``: the same plus one ``gen_ai.evaluation.result`` span event per axis (the default).
- ``log``: attributes only on the span, plus the four log records (``evaluation_log_records``), grouped
  under the span's resource (``pipeline.resource_logs``) and encoded as an ``ExportLogsServiceRequest``.
- ``both``: events on the span and the log records.

CPU is ``time.process_time()`` over the round; the table gives the median µs per query over rounds and
what each mode adds to ``none`` (median of the per-round differences).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest  # noqa: E402
from opentelemetry.proto.common.v1.common_pb2 import InstrumentationScope, KeyValue  # noqa: E402
from opentelemetry.proto.resource.v1.resource_pb2 import Resource  # noqa: E402
from opentelemetry.proto.trace.v1.trace_pb2 import Span  # noqa: E402

from rag_otel.processor import enrich  # noqa: E402
from rag_otel.processor.assembly import Origin  # noqa: E402
from rag_otel.processor.enrich import any_value  # noqa: E402
from rag_otel.processor.pipeline import resource_logs  # noqa: E402
from rag_otel.records import AxisScore, QualityResult, QueryRecord  # noqa: E402

MODES = ("none", "span", "log", "both")


def fixture() -> tuple[Span, QueryRecord, QualityResult, Origin]:
    root = Span(name="rag.query", trace_id=b"\x01" * 16, span_id=b"\x02" * 8, flags=0x101,
                start_time_unix_nano=1, end_time_unix_nano=2)
    for k, v in {"user.id": "u-17", "session.id": "s-3", "rag.features": "citations", "rag.retrieval.count": 4,
                 "gen_ai.operation.name": "rag", "rag.query.category": "how-to"}.items():
        root.attributes.append(KeyValue(key=k, value=any_value(v)))
    axes = {
        "accuracy": AxisScore(0.82, "82% support: the answer's content words found in the sources, and together "
                              "in one sentence", "good", "lexical/2", 'least supported: "..."'),
        "completeness": AxisScore(0.5, "2 question part(s); on average 50% of each part's content words are "
                                  "addressed; 1 not addressed", "fair", "lexical/2", 'not addressed: "..."'),
        "relevance": AxisScore(0.61, "the answer uses 60% of the question's content words; 67% of its sentences "
                               "touch the question", "fair", "lexical/2"),
        "consistency": AxisScore(1.0, "no contradiction with the sources and itself found (numbers, names, "
                                 "opposites, negation)", "good", "lexical/2"),
    }
    quality = QualityResult(axes, 0.73, "lexical/2", "scored", "good")
    rec = QueryRecord("01" * 16, "02" * 8, 0.0, 1.2, latency_category="good", cost_usd=0.0012)
    resource = Resource(attributes=[KeyValue(key="service.name", value=any_value("rag-app"))])
    origin = Origin(resource, "", InstrumentationScope(name="app"), "")
    return root, rec, quality, origin


def run_mode(mode: str, n: int, root: Span, rec: QueryRecord, quality: QualityResult, origin: Origin) -> float:
    """µs of CPU per query for ``mode`` over ``n`` fresh copies of ``root``."""
    copies = [Span() for _ in range(n)]
    for c in copies:
        c.CopyFrom(root)
    t0 = time.process_time()
    for span in copies:
        enrich.enrich_root(span, rec, quality, cost_missing=False, grade_thresholds={}, span_events=mode in ("span",
                                                                                                          "both"))
        span.SerializeToString()
        if mode in ("log", "both"):
            records = enrich.evaluation_log_records(span, quality, 3)
            ExportLogsServiceRequest(resource_logs=resource_logs([(origin, records)])).SerializeToString()
    return (time.process_time() - t0) / n * 1e6


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--n", type=int, default=2000, help="queries per mode per round")
    ap.add_argument("--quick", action="store_true", help="smoke run: 3 rounds of 200")
    args = ap.parse_args()
    if args.quick:
        args.rounds, args.n = 3, 200
    root, rec, quality, origin = fixture()
    for mode in MODES:  # warm-up: the cached wire bytes of keys and values
        run_mode(mode, 50, root, rec, quality, origin)
    per: dict[str, list[float]] = {m: [] for m in MODES}
    for r in range(args.rounds):
        order = MODES[r % len(MODES):] + MODES[:r % len(MODES)]
        for mode in order:
            per[mode].append(run_mode(mode, args.n, root, rec, quality, origin))
    print(f"{args.rounds} rounds x {args.n} queries per mode, rotating order; CPU µs per scored query (4 axes)")
    print("| mode | median µs | added to `none` (median of rounds) |")
    print("|---|---:|---:|")
    for mode in MODES:
        added = [x - b for x, b in zip(per[mode], per["none"], strict=True)]
        print(f"| {mode} | {statistics.median(per[mode]):.1f} | {statistics.median(added):+.1f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
