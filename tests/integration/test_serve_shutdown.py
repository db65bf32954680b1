"""SIGTERM on a real ``rag-otel serve`` with thousands of traces in assembly (issue 13, item 5).

A healthy downstream: everything accepted is exported within the grace period, although the traces
flushed at once are far more than one export queue holds.  A dead downstream: what is lost is counted
and the last log line says how many, never that everything was exported.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path

import httpx
import yaml
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans

from tests.support.otlp_sink import OtlpSink
from tests.support.serve_process import ServeProcess

TRACES, SPANS_PER_TRACE = 3000, 3


def waiting_traces(n: int) -> bytes:
    """``n`` traces of child spans only: no root, so each waits in assembly for trace_timeout."""
    rs = ResourceSpans()
    kv = rs.resource.attributes.add()
    kv.key, kv.value.string_value = "service.name", "rag-app"
    ss = rs.scope_spans.add()
    for _ in range(n):
        trace_id, parent = os.urandom(16), os.urandom(8)
        for i in range(SPANS_PER_TRACE):
            span = ss.spans.add(trace_id=trace_id, span_id=os.urandom(8), parent_span_id=parent, name=f"step-{i}")
            span.start_time_unix_nano, span.end_time_unix_nano = 1_700_000_000_000_000_000, 1_700_000_001_000_000_000
    return ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString()


def serve(tmp_path: Path, sink: OtlpSink, grace: float) -> ServeProcess:
    config = tmp_path / "rag-otel.yaml"
    config.write_text(yaml.safe_dump({"model_observation": {"processor": {
        "http": "127.0.0.1:0", "data_dir": str(tmp_path / "data"), "trace_timeout": 300, "shutdown_grace": grace,
        "export_queue_size": 500,  # far less than the 9,000 spans flushed at once on SIGTERM
        "exports": [{"url": sink.http_endpoint}],
    }}}))
    return ServeProcess(config, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0")


def load(server: ServeProcess) -> None:
    with httpx.Client() as client:
        for _ in range(TRACES // 500):
            r = client.post(f"http://{server.otlp_http}/v1/traces", content=waiting_traces(500),
                            headers={"content-type": "application/x-protobuf"})
            assert r.status_code == 200
        deadline = time.monotonic() + 30
        while client.get(f"http://{server.http}/health").json()["pipeline"]["traces_in_flight"] < TRACES:
            assert time.monotonic() < deadline, "the traces never reached assembly"
            time.sleep(0.1)


def test_sigterm_exports_everything_accepted_when_the_downstream_keeps_up(tmp_path: Path) -> None:
    with OtlpSink(grpc=False) as sink:
        server = serve(tmp_path, sink, grace=20).start()
        try:
            load(server)
            assert sink.spans() == []  # all of it still in assembly
        finally:
            code = server.stop(timeout=40)
        assert code == 0
        assert len(sink.spans()) == TRACES * SPANS_PER_TRACE
    assert any("stopped: everything accepted was exported" in line for line in server.log), server.log[-5:]


def test_sigterm_with_a_dead_downstream_says_how_many_spans_were_lost(tmp_path: Path) -> None:
    with OtlpSink(grpc=False) as sink:
        sink.reject = True  # answers 503 to everything: retried until the grace period is over
        server = serve(tmp_path, sink, grace=3).start()
        try:
            load(server)
        finally:
            server.stop(timeout=30)
    last = [line for line in server.log if "rag-otel serve stopped" in line]
    assert len(last) == 1 and "everything accepted was exported" not in last[0], server.log[-5:]
    lost = re.search(r"stopped with losses \(counted in rag.processor.export.dropped\): (.*)", last[0])
    assert lost, last[0]
    spans = sum(int(n) for n in re.findall(r"(\d+) spans \(", lost.group(1)))
    in_pipeline = sum(int(n) for n in re.findall(r"(\d+) items still in the pipeline", lost.group(1)))
    assert spans + in_pipeline >= TRACES * SPANS_PER_TRACE  # every span accounted for, none delivered
