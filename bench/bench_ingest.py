"""Processor ingest: OTLP receive + downstream export, in spans per CPU-second, beside the ceiling.

Run: ``.venv/bin/python bench/bench_ingest.py [--requests 120] [--repeats 5]``

Three processes, so only the system under test is on the clock:

- a *client* process sends the requests (``bench/otlp_workload.py``: 50 six-span RAG traces per
  request, gzip) over OTLP/HTTP or OTLP/gRPC with 4 concurrent senders;
- *this* process runs the receiver, a pass-through sink and the fan-out exporter (batch 512,
  export with and without gzip), and its CPU time (``time.process_time()``, all threads) is what we measure, from "go"
  until the exporter's queue is flushed;
- a *downstream* process (our receiver, counting sink) receives the export.

Baselines in the same run, same request bodies, same process: the pure Python ceiling
(decode each body, re-encode its resources as the exporter frames them), and the same with the
gzip work the path does (inflate the body, deflate the export).  Rounds are interleaved;
medians are reported.
"""

from __future__ import annotations

import argparse
import gzip
import platform
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "bench"))

import grpc  # noqa: E402
import httpx  # noqa: E402
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest  # noqa: E402
from opentelemetry.sdk.metrics import MeterProvider  # noqa: E402
from opentelemetry.sdk.metrics.export import InMemoryMetricReader  # noqa: E402
from otlp_workload import SPANS_PER_TRACE, make_requests  # noqa: E402

from rag_otel.config import Endpoint  # noqa: E402
from rag_otel.processor.exporter import OtlpFanOut, frame  # noqa: E402
from rag_otel.processor.receiver import OtlpReceiver, ReceiverConfig  # noqa: E402
from rag_otel.processor.sink import ACCEPTED, Admission  # noqa: E402

TRACES_PER_REQUEST = 50
SPANS_PER_REQUEST = TRACES_PER_REQUEST * SPANS_PER_TRACE
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


class PassThrough:
    """The receive -> export path with no pipeline in between."""

    def __init__(self, fanout: OtlpFanOut) -> None:
        self.fanout = fanout

    def offer_traces(self, request: ExportTraceServiceRequest) -> Admission:
        self.fanout.export_spans(request.resource_spans)
        return ACCEPTED

    def offer_metrics(self, request: object) -> Admission:
        return ACCEPTED

    def offer_logs(self, request: object) -> Admission:
        return ACCEPTED


class Counting:
    """Downstream sink: counts spans, keeps nothing."""

    def __init__(self) -> None:
        self.spans = 0
        self.lock = threading.Lock()

    def offer_traces(self, request: ExportTraceServiceRequest) -> Admission:
        n = sum(len(ss.spans) for rs in request.resource_spans for ss in rs.scope_spans)
        with self.lock:
            self.spans += n
        return ACCEPTED

    offer_metrics = offer_logs = PassThrough.offer_metrics


def _endpoint_config(**kw: str | None) -> ReceiverConfig:
    return ReceiverConfig(max_request_bytes=64 << 20, max_concurrent_requests=8, **kw)  # type: ignore[arg-type]


def run_downstream() -> None:
    sink = Counting()
    rx = OtlpReceiver(_endpoint_config(grpc_endpoint="127.0.0.1:0", http_endpoint="127.0.0.1:0"), sink,
                      MeterProvider().get_meter("downstream"))
    rx.start()
    print(rx.grpc_address, rx.http_address, flush=True)
    for line in sys.stdin:  # "count" -> spans so far; EOF -> stop
        if line.strip() == "count":
            print(sink.spans, flush=True)
    rx.stop(1)


def run_client(proto: str, target: str, n_requests: int, threads: int) -> None:
    bodies = [gzip.compress(b, 6) for b in make_requests(n_requests, TRACES_PER_REQUEST)]
    print("ready", flush=True)
    sys.stdin.readline()  # "go"
    parts = [bodies[i::threads] for i in range(threads)]
    errors: list[str] = []

    def send(mine: list[bytes]) -> None:
        if proto == "http":
            with httpx.Client(timeout=60) as client:
                for body in mine:
                    r = client.post(f"http://{target}/v1/traces", content=body, headers={
                        "content-type": "application/x-protobuf", "content-encoding": "gzip"})
                    if r.status_code != 200:
                        errors.append(f"HTTP {r.status_code}")
        else:
            with grpc.insecure_channel(target) as channel:
                call = channel.unary_unary(TRACE_METHOD)
                for body in mine:  # already gzip-compressed bytes would be double work: send raw, grpc gzips
                    call(gzip.decompress(body), timeout=60, compression=grpc.Compression.Gzip)

    workers = [threading.Thread(target=send, args=(p,)) for p in parts]
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    print("done", len(errors), flush=True)


def _spawn(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, __file__, *args], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            text=True)


def measure_path(proto: str, compression: str, downstream: tuple[str, str], n_requests: int) -> tuple[float, float]:
    """(spans per CPU-second, spans per wall-second) of receive + export in this process."""
    reader = InMemoryMetricReader()
    meter = MeterProvider(metric_readers=[reader]).get_meter("bench")
    grpc_down, http_down = downstream
    url = f"grpc://{grpc_down}" if proto == "grpc" else f"http://{http_down}"
    fanout = OtlpFanOut([Endpoint(url=url, timeout=60, compression=compression)], meter, queue_size=1_000_000,
                        batch_size=512)
    fanout.start()
    rx = OtlpReceiver(_endpoint_config(grpc_endpoint="127.0.0.1:0" if proto == "grpc" else None,
                                       http_endpoint="127.0.0.1:0" if proto == "http" else None),
                      PassThrough(fanout), meter)
    rx.start()
    client = _spawn("--role", "client", "--proto", proto, "--target",
                    rx.grpc_address if proto == "grpc" else rx.http_address, "--requests", str(n_requests))
    assert client.stdout is not None and client.stdin is not None
    assert client.stdout.readline().strip() == "ready"
    cpu0, wall0 = time.process_time(), time.perf_counter()
    client.stdin.write("go\n")
    client.stdin.flush()
    done = client.stdout.readline().split()
    client.wait()
    assert fanout.flush(120), "export did not drain"
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    rx.stop(1)
    fanout.shutdown(1)
    spans = n_requests * SPANS_PER_REQUEST
    assert done == ["done", "0"], done
    return spans / cpu, spans / wall


def measure_ceiling(bodies: list[bytes], gz: bool) -> float:
    """Spans per CPU-second of decode + re-encode (and inflate + deflate when ``gz``)."""
    inputs = [gzip.compress(b, 6) for b in bodies] if gz else bodies
    cpu0 = time.process_time()
    for body in inputs:
        req = ExportTraceServiceRequest.FromString(gzip.decompress(body) if gz else body)
        out = b"".join(frame(rs) for rs in req.resource_spans)
        if gz:
            gzip.compress(out, 1)
    return len(bodies) * SPANS_PER_REQUEST / (time.process_time() - cpu0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--requests", type=int, default=120)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--role", choices=["main", "client", "downstream"], default="main")
    ap.add_argument("--proto", choices=["http", "grpc"], default="http")
    ap.add_argument("--target", default="")
    ap.add_argument("--threads", type=int, default=4)
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 requests, 1 round")
    a = ap.parse_args()
    if a.quick:
        a.requests, a.repeats = 20, 1
    if a.role == "downstream":
        return run_downstream()
    if a.role == "client":
        return run_client(a.proto, a.target, a.requests, a.threads)

    bodies = make_requests(a.requests, TRACES_PER_REQUEST)
    down = _spawn("--role", "downstream")
    assert down.stdout is not None and down.stdin is not None
    grpc_down, http_down = down.stdout.readline().split()
    paths = [(proto, comp) for proto in ("http", "grpc") for comp in ("gzip", "none")]
    results: dict[str, list[float]] = {"ceiling": [], "ceiling_gzip": []}
    try:
        for _ in range(a.repeats):
            results["ceiling"].append(measure_ceiling(bodies, gz=False))
            results["ceiling_gzip"].append(measure_ceiling(bodies, gz=True))
            for proto, comp in paths:
                per_cpu, per_wall = measure_path(proto, comp, (grpc_down, http_down), a.requests)
                results.setdefault(f"{proto}/{comp}", []).append(per_cpu)
                results.setdefault(f"{proto}/{comp}/wall", []).append(per_wall)
        down.stdin.write("count\n")
        down.stdin.flush()
        received = int(down.stdout.readline())
    finally:
        down.stdin.close()
        down.wait(10)
    expected = a.repeats * len(paths) * a.requests * SPANS_PER_REQUEST
    med = {k: statistics.median(v) for k, v in results.items()}
    print(f"machine: {platform.processor() or platform.machine()}, Python {platform.python_version()}, "
          f"{a.requests} requests x {SPANS_PER_REQUEST} spans, {a.repeats} rounds; downstream received "
          f"{received}/{expected} spans")
    print("| loop | spans per CPU-second (median) | vs ceiling | vs ceiling with gzip | spans per wall-second |")
    print("|---|---:|---:|---:|---:|")
    print(f"| ceiling: decode + re-encode | {med['ceiling']:,.0f} | 1.00 | | |")
    print(f"| ceiling with gzip in and out | {med['ceiling_gzip']:,.0f} | {med['ceiling_gzip'] / med['ceiling']:.2f}"
          " | 1.00 | |")
    names = {"http": "OTLP/HTTP in -> OTLP/HTTP out", "grpc": "OTLP/gRPC in -> OTLP/gRPC out"}
    for proto, comp in paths:
        k = f"{proto}/{comp}"
        print(f"| {names[proto]}, export {comp} | {med[k]:,.0f} | {med[k] / med['ceiling']:.2f} | "
              f"{med[k] / med['ceiling_gzip']:.2f} | {med[k + '/wall']:,.0f} |")
    if received != expected:
        raise SystemExit(f"lost spans: downstream received {received} of {expected}")


if __name__ == "__main__":
    main()
