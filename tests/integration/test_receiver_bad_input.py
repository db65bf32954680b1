"""Bad input loses nothing else: each bad request gets the OTLP-named error, is counted, and the
receiver keeps serving good requests; oversized bodies and gzip bombs cost no memory."""

from __future__ import annotations

import gzip
import random
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator

import grpc
import httpx
import psutil
import pytest
from google.rpc import code_pb2, error_details_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rag_otel.processor.sink import MemorySink
from tests.support.otlp_io import Metrics, resource_spans, running_receiver

LIMIT = 1 << 20  # 1 MiB request limit for these tests
PB = {"content-type": "application/x-protobuf"}
TRACE_METHOD = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"


def good_body(n: int = 3) -> bytes:
    return ExportTraceServiceRequest(resource_spans=[resource_spans(n)]).SerializeToString()


BAD_BODIES = {
    "random": random.Random(7).randbytes(2000),
    "truncated": good_body(20)[:-37],
}


@pytest.fixture
def served() -> Iterator[tuple[MemorySink, Metrics, object]]:
    sink, metrics = MemorySink(), Metrics()
    with running_receiver(sink, metrics, max_request_bytes=LIMIT) as receiver:
        yield sink, metrics, receiver


def grpc_call(receiver, body: bytes, compression=grpc.Compression.NoCompression,
              timeout: float = 10) -> grpc.RpcError | bytes:
    with grpc.insecure_channel(receiver.grpc_address) as ch:
        try:
            return ch.unary_unary(TRACE_METHOD)(body, timeout=timeout, compression=compression)
        except grpc.RpcError as e:
            return e


def still_serves(receiver, sink: MemorySink) -> None:
    before = len(sink.spans())
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=good_body(), headers=PB)
    assert r.status_code == 200
    assert isinstance(grpc_call(receiver, good_body()), bytes)
    assert len(sink.spans()) == before + 6


@pytest.mark.parametrize("kind", sorted(BAD_BODIES))
def test_malformed_protobuf_is_400_and_invalid_argument(kind: str, served) -> None:
    sink, metrics, receiver = served
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=BAD_BODIES[kind], headers=PB)
    assert r.status_code == 400
    status = status_pb2.Status.FromString(r.content)
    assert status.code == code_pb2.INVALID_ARGUMENT and "cannot decode" in status.message
    err = grpc_call(receiver, BAD_BODIES[kind])
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert metrics.value("rag.processor.refused", reason="malformed") == 2
    assert sink.spans() == []
    still_serves(receiver, sink)


def test_malformed_json_is_400_with_a_json_status(served) -> None:
    sink, _metrics, receiver = served
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=b'{"resourceSpans": [',
                   headers={"content-type": "application/json"})
    assert r.status_code == 400 and r.headers["content-type"] == "application/json"
    assert "not JSON" in r.json()["message"]
    still_serves(receiver, sink)


@pytest.mark.parametrize(("method", "path", "headers", "status", "reason"), [
    ("POST", "/v1/traces", {"content-type": "text/plain"}, 415, "unsupported_media_type"),
    ("POST", "/v1/traces", {"content-type": "application/x-protobuf", "content-encoding": "br"}, 415,
     "unsupported_media_type"),
    ("POST", "/v1/spans", PB, 404, "not_found"),
    ("GET", "/v1/traces", PB, 405, "not_found"),
])
def test_wrong_media_type_path_or_method(method, path, headers, status, reason, served) -> None:
    sink, metrics, receiver = served
    r = httpx.request(method, f"http://{receiver.http_address}{path}", content=b"" if method == "GET" else good_body(),
                      headers=headers)
    assert r.status_code == status
    assert metrics.value("rag.processor.refused", reason=reason) == 1
    still_serves(receiver, sink)


def zeros_gzipped(size: int) -> bytes:
    """gzip of ``size`` zero bytes, built without ever holding ``size`` bytes."""
    z = zlib.compressobj(6, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [z.compress(block) for _ in range(size >> 20)]
    return b"".join([*parts, z.flush()])


def test_gzip_bomb_is_refused_without_inflating_it(served) -> None:
    sink, metrics, receiver = served
    bomb = zeros_gzipped(64 << 20)  # 64 MiB of zeros in ~64 KiB
    assert len(bomb) < LIMIT
    rss = psutil.Process().memory_info().rss
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=bomb,
                   headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 413
    assert "decompressed body exceeds" in status_pb2.Status.FromString(r.content).message
    assert psutil.Process().memory_info().rss - rss < 30 << 20
    # gRPC: grpc core caps the decompressed size with the same limit
    err = grpc_call(receiver, bytes(8 << 20), compression=grpc.Compression.Gzip)
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert metrics.value("rag.processor.refused", reason="too_large") == 1
    still_serves(receiver, sink)


def chunks(total: int, size: int = 1 << 16) -> Iterator[bytes]:
    block = bytes(size)
    for _ in range(total // size):
        yield block


@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_50mb_body_is_413_and_memory_stays_flat(declared: bool, served) -> None:
    sink, metrics, receiver = served
    total = 50 << 20
    headers = {**PB, "content-length": str(total)} if declared else PB
    rss = psutil.Process().memory_info().rss
    t0 = time.monotonic()
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=chunks(total), headers=headers, timeout=30)
    assert r.status_code == 413
    assert time.monotonic() - t0 < 10
    assert psutil.Process().memory_info().rss - rss < 20 << 20  # far below the 50 MB sent
    assert metrics.value("rag.processor.refused", reason="too_large") == 1
    still_serves(receiver, sink)


def test_50mb_grpc_message_is_resource_exhausted(served) -> None:
    sink, _metrics, receiver = served
    # 30 s, as the HTTP test above: pushing 50 MB through loopback HTTP/2 took over 10 s on a loaded machine
    err = grpc_call(receiver, bytes(50 << 20), timeout=30)
    assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.RESOURCE_EXHAUSTED
    still_serves(receiver, sink)


def test_invalid_spans_in_a_batch_are_refused_and_the_rest_kept(served) -> None:
    sink, metrics, receiver = served
    req = ExportTraceServiceRequest(resource_spans=[resource_spans(4)])
    spans = req.resource_spans[0].scope_spans[0].spans
    spans[1].trace_id = bytes(16)  # all-zero trace id: invalid
    spans[2].span_id = b"\x01\x02"  # wrong length
    for send in ("http", "grpc"):
        if send == "http":
            r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=req.SerializeToString(), headers=PB)
            assert r.status_code == 200
            answer = ExportTraceServiceResponse.FromString(r.content)
        else:
            answer = ExportTraceServiceResponse.FromString(grpc_call(receiver, req.SerializeToString()))
        assert answer.partial_success.rejected_spans == 2
        assert "trace_id" in answer.partial_success.error_message
    assert sorted(s.name for s in sink.spans()) == ["0", "0", "3", "3"]
    assert metrics.value("rag.processor.rejected", signal="spans") == 4
    assert metrics.value("rag.processor.received", signal="spans") == 4


def test_otlp_json_hex_ids_and_partial_success(served) -> None:
    sink, _metrics, receiver = served
    doc = {"resourceSpans": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "a"}}]},
                              "scopeSpans": [{"spans": [
        {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174", "parentSpanId": "",
         "name": "ok", "kind": 3, "startTimeUnixNano": "1700000000000000000", "someFutureField": 1,
         "attributes": [{"key": "gen_ai.usage.input_tokens", "value": {"intValue": "42"}}]},
        {"traceId": "not-hex", "spanId": "eee19b7ec3c1b174", "name": "bad"},
    ]}]}]}
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", json=doc)
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.json()["partialSuccess"]["rejectedSpans"] in ("1", 1)
    [span] = sink.spans()
    assert span.trace_id.hex() == "5b8efff798038103d269b633813fc60c" and span.span_id.hex() == "eee19b7ec3c1b174"
    assert span.kind == 3 and span.start_time_unix_nano == 1_700_000_000_000_000_000
    assert span.attributes[0].value.int_value == 42


def test_full_sink_answers_retry_later_and_the_sdk_retry_delivers() -> None:
    sink, metrics = MemorySink(capacity=1, retry_after=0.3), Metrics()  # the sink says how long to wait
    with running_receiver(sink, metrics) as receiver:
        sink.offer_traces(ExportTraceServiceRequest())  # now full
        r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=good_body(), headers=PB)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        err = grpc_call(receiver, good_body())
        assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE
        details = status_pb2.Status.FromString(dict(err.trailing_metadata())["grpc-status-details-bin"])
        info = error_details_pb2.RetryInfo()
        assert details.details[0].Unpack(info) and info.retry_delay.ToMilliseconds() == 300
        assert metrics.value("rag.processor.refused", reason="back_pressure") == 2

        # The real SDK exporters, blocked by a full sink, retry and deliver once space frees.
        results = {}

        def export(name: str, exporter) -> None:
            tp = TracerProvider()
            tp.add_span_processor(SimpleSpanProcessor(exporter))
            tp.get_tracer("t").start_span(f"after-{name}").end()
            results[name] = True

        threads = [threading.Thread(target=export, args=("grpc", GrpcSpans(endpoint=receiver.grpc_address,
                                                                          insecure=True))),
                   threading.Thread(target=export, args=("http", HttpSpans(
                       endpoint=f"http://{receiver.http_address}/v1/traces")))]
        for t in threads:
            t.start()
        # space frees only once each exporter has been refused (a fixed pause lost a slow-starting thread's
        # refusal when the suite ran in parallel)
        deadline = time.monotonic() + 15
        while metrics.value("rag.processor.refused", reason="back_pressure") < 4 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert metrics.value("rag.processor.refused", reason="back_pressure") >= 4
        assert [s.name for s in sink.spans()] == []  # nothing got in while full
        sink.capacity = None
        sink.clear()
        for t in threads:
            t.join(15)
        assert sorted(s.name for s in sink.spans()) == ["after-grpc", "after-http"]


class _RaisingSink(MemorySink):
    """A sink with a bug: the receiver must answer retry-later and keep serving."""

    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def offer_traces(self, request):
        if self.broken:
            raise RuntimeError("bug in the pipeline")
        return super().offer_traces(request)


def test_a_raising_sink_is_503_and_the_receiver_survives() -> None:
    sink, metrics = _RaisingSink(), Metrics()
    with running_receiver(sink, metrics) as receiver:
        r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=good_body(), headers=PB)
        assert r.status_code == 503 and "retry-after" in r.headers
        err = grpc_call(receiver, good_body())
        assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE
        assert metrics.value("rag.processor.refused", reason="internal") == 2
        sink.broken = False
        still_serves(receiver, sink)


class _GateSink(MemorySink):
    """Holds each offer until the gate opens: requests stay 'in progress' (a slow pipeline)."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()
        self.entered = threading.Event()

    def offer_traces(self, request):
        self.entered.set()
        self.gate.wait(10)
        return super().offer_traces(request)


def test_concurrent_decodes_are_bounded() -> None:
    sink, metrics = _GateSink(), Metrics()
    with running_receiver(sink, metrics, max_concurrent_requests=1) as receiver:
        url = f"http://{receiver.http_address}/v1/traces"
        first = threading.Thread(target=httpx.post, args=(url,), kwargs={"content": good_body(), "headers": PB})
        first.start()
        assert sink.entered.wait(5)
        r = httpx.post(url, content=good_body(), headers=PB)
        assert r.status_code == 503 and r.headers["retry-after"] == "1"
        err = grpc_call(receiver, good_body())
        assert isinstance(err, grpc.RpcError) and err.code() == grpc.StatusCode.UNAVAILABLE
        assert metrics.value("rag.processor.refused", reason="busy") == 2
        sink.gate.set()
        first.join(5)
        still_serves(receiver, sink)
        assert len(sink.spans()) == 9


def test_gzip_http_body_is_accepted(served) -> None:
    sink, _metrics, receiver = served
    r = httpx.post(f"http://{receiver.http_address}/v1/traces", content=gzip.compress(good_body(5)),
                   headers={**PB, "content-encoding": "gzip"})
    assert r.status_code == 200 and len(sink.spans()) == 5


def test_a_kept_alive_connection_survives_refusals(served) -> None:
    """Exporters reuse one connection: a refused request must not poison the next one on it."""
    sink, _metrics, receiver = served
    url = f"http://{receiver.http_address}/v1/traces"
    with httpx.Client() as client:
        answers = [client.post(url, content=body, headers=PB).status_code
                   for body in (bytes(2 * LIMIT), good_body(), BAD_BODIES["random"], good_body())]
        answers.append(client.post(url, content=chunks(3 * LIMIT), headers=PB).status_code)
        answers.append(client.post(url, content=good_body(), headers=PB).status_code)
    assert answers == [413, 200, 400, 200, 413, 200]
    assert len(sink.spans()) == 9


def test_mutated_requests_from_concurrent_senders_get_only_200_or_400(served) -> None:
    """Seeded fuzzing: flipped bytes and truncations, protobuf and JSON, both fronts, 4 senders."""
    sink, metrics, receiver = served
    good = good_body(3)
    unexpected: list[object] = []

    def sender(seed: int) -> None:
        rng = random.Random(seed)
        with httpx.Client() as client, grpc.insecure_channel(receiver.grpc_address) as channel:
            call = channel.unary_unary(TRACE_METHOD)
            for _ in range(40):
                body = bytearray(good)
                for _ in range(rng.randrange(6)):
                    body[rng.randrange(len(body))] = rng.randrange(256)
                if rng.random() < 0.3:
                    body = body[:rng.randrange(len(body))]
                ctype = rng.choice(["application/x-protobuf", "application/json"])
                r = client.post(f"http://{receiver.http_address}/v1/traces", content=bytes(body),
                                headers={"content-type": ctype})
                if r.status_code not in (200, 400):
                    unexpected.append(r.status_code)
                try:
                    call(bytes(body), timeout=5)
                except grpc.RpcError as e:
                    if e.code() != grpc.StatusCode.INVALID_ARGUMENT:
                        unexpected.append(e.code())

    threads = [threading.Thread(target=sender, args=(seed,)) for seed in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert unexpected == []
    answered = metrics.value("rag.processor.refused", reason="malformed") + len(sink.traces)
    assert answered == 4 * 40 * 2  # every request either refused as malformed or taken
    still_serves(receiver, sink)


_FLOOD_SENDER = """
import sys, threading, grpc
target, path, n, method = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
body = open(path, "rb").read()
codes = []
def send():
    with grpc.insecure_channel(target) as ch:
        try:
            ch.unary_unary(method)(body, timeout=60)
            codes.append("OK")
        except grpc.RpcError as e:
            codes.append(e.code().name)
threads = [threading.Thread(target=send) for _ in range(n)]
[t.start() for t in threads]
[t.join() for t in threads]
print(" ".join(sorted(set(codes))), flush=True)
"""


def test_a_grpc_flood_waits_in_flow_control_not_in_memory(tmp_path) -> None:
    """24 concurrent 7 MB gRPC requests, 2 receive and decode slots, a stalled pipeline: the waiting requests
    are held back by HTTP/2 flow control (not buffered here, not refused), then all delivered."""
    sink, metrics = _GateSink(), Metrics()
    rs = resource_spans(1)
    rs.scope_spans[0].spans[0].attributes.add().value.string_value = "x" * (7 << 20)
    body = tmp_path / "body.bin"
    body.write_bytes(ExportTraceServiceRequest(resource_spans=[rs]).SerializeToString())
    with running_receiver(sink, metrics, max_request_bytes=8 << 20, max_concurrent_requests=2,
                          max_receiving_requests=2) as receiver:
        rss0 = psutil.Process().memory_info().rss
        sender = subprocess.Popen([sys.executable, "-c", _FLOOD_SENDER, receiver.grpc_address, str(body), "24",
                                   TRACE_METHOD],
                                  stdout=subprocess.PIPE, text=True)  # its own process: its memory is not ours
        assert sink.entered.wait(10)
        peak = 0
        for _ in range(15):  # 1.5 s of a stalled pipeline with every sender waiting
            time.sleep(0.1)
            peak = max(peak, psutil.Process().memory_info().rss - rss0)
        assert peak < 90 << 20  # 2 requests in hand (bytes + decoded); 24 x 7 MB would be 168 MB
        sink.gate.set()
        out, _ = sender.communicate(timeout=60)
    assert out.split() == ["OK"]
    assert metrics.value("rag.processor.received", signal="spans") == 24
