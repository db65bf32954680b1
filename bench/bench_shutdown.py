"""What stopping an app costs with the collector down, and what a huge captured answer costs
(issue 13.7, issue 16).

1. ``handle.shutdown()`` with nothing listening at the endpoint and the exporters' default 10 s
   timeout: the SDK providers' own shutdowns one after the other (what rag-otel did before)
   against rag-otel's bounded drain, alternated, ``--repeats`` each.
2. ``ContentPolicy.clean`` of a 5 MB answer: redact all, then cap (the old order) against cap,
   then redact, alternated, medians of ``--repeats``.

``.venv/bin/python bench/bench_shutdown.py [--repeats 3] [--quick]``
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import time

from opentelemetry.test.globals_test import reset_logging_globals, reset_metrics_globals, reset_trace_globals

import rag_otel
from rag_otel import generate, rag_query, record_feedback
from rag_otel.config import Content
from rag_otel.sdk import runtime
from rag_otel.sdk.content import ContentPolicy


def dead_endpoint() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{s.getsockname()[1]}"


def one_stop(old: bool) -> float:
    for reset in (reset_trace_globals, reset_metrics_globals, reset_logging_globals):
        reset()
    h = rag_otel.configure(endpoint=dead_endpoint(), system_metrics=False, instrument=[])
    with rag_query("q", user_id="u") as q, generate("gpt-4o-mini") as g:
        g.set_usage(input_tokens=10, output_tokens=5)
    record_feedback(q, thumbs=True)
    t0 = time.monotonic()
    if old:  # the providers' own shutdowns, as before: each signal retries on its own
        h.tracer_provider.shutdown()
        h.meter_provider.shutdown()
        h.logger_provider.shutdown()
    h.shutdown()  # after the old path: only releases what is left
    took = time.monotonic() - t0
    runtime.set_runtime(None)
    return took


def clean_times(repeats: int) -> tuple[float, float]:
    p = ContentPolicy(Content(capture="full"))
    sentence = "The refund policy, see jane.doe@example.com or call +1 415 555 0100, card 4111 1111 1111 1111. "
    huge = sentence * (5_000_000 // len(sentence))
    old, new = [], []
    for _ in range(repeats):
        t0 = time.perf_counter()
        p.redact(huge)[: p.max_chars]
        old.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        p.clean(huge)
        new.append(time.perf_counter() - t0)
    return statistics.median(old), statistics.median(new)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="smoke run: 1 repeat, a 2 s exporter timeout")
    args = ap.parse_args()
    os.environ["OTEL_METRIC_EXPORT_INTERVAL"] = "60000"
    for var in ("OTEL_EXPORTER_OTLP_TIMEOUT", "RAG_OTEL_SHUTDOWN_TIMEOUT", "OTEL_EXPORTER_OTLP_ENDPOINT"):
        os.environ.pop(var, None)
    if args.quick:
        args.repeats = 1
        os.environ["OTEL_EXPORTER_OTLP_TIMEOUT"] = "2"
    old, new = [], []
    for _ in range(args.repeats):
        old.append(one_stop(old=True))
        new.append(one_stop(old=False))
    timeout = os.environ.get("OTEL_EXPORTER_OTLP_TIMEOUT", "10")
    print(f"| shutdown(), collector down, {timeout} s exporter timeout | median s | runs |")
    print("|---|---:|---|")
    for label, runs in (("providers' own shutdowns (before)", old), ("bounded drain (now)", new)):
        print(f"| {label} | {statistics.median(runs):.2f} | {', '.join(f'{x:.1f}' for x in runs)} |")
    o, n = clean_times(args.repeats)
    print()
    print("| clean() of a 5 MB answer, max_chars 16384 | median s |")
    print("|---|---:|")
    print(f"| redact all, then cap (before) | {o:.3f} |")
    print(f"| cap, then redact (now) | {n:.4f} |")
    print(f"| ratio | {o / n:.0f}x |")


if __name__ == "__main__":
    main()
