"""Stalled and malformed clients cost the receiver nothing that valid senders need (issue 13, items 1 and 9).

Real sockets throughout: the attackers are raw TCP connections that send part of a request and stall
(slowloris), the valid senders are the OpenTelemetry SDK's own OTLP/HTTP and OTLP/gRPC exporters.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from google.rpc import code_pb2, status_pb2
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpans
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpans
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from rag_otel.processor.ingest import check_bearer
from rag_otel.processor.sink import MemorySink
from tests.support.otlp_io import Metrics, running_receiver

HEAD = (b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
        b"Content-Length: 100000\r\n\r\n")


def _addr(hostport: str) -> tuple[str, int]:
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


@contextmanager
def stalled_connections(hostport: str, mid_body: int, mid_headers: int) -> Iterator[list[socket.socket]]:
    """``mid_body`` connections that sent headers and 10 of 100,000 body bytes, and ``mid_headers`` that sent half
    a request head; all then stall (the sockets stay open, nothing more is sent)."""
    socks = []
    try:
        for _ in range(mid_body):
            s = socket.create_connection(_addr(hostport))
            s.sendall(HEAD + b"\x0a\x08partial!")
            socks.append(s)
        for _ in range(mid_headers):
            s = socket.create_connection(_addr(hostport))
            s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Ty")
            socks.append(s)
        time.sleep(0.3)  # let the server take them all in
        yield socks
    finally:
        for s in socks:
            s.close()


def grpc_stalled_streams(hostport: str, n: int) -> list[socket.socket]:
    """``n`` HTTP/2 connections, each opening one OTLP/gRPC Export stream whose message says 100,000 bytes and sends
    10, then stalls (hand-written frames: HEADERS with literal HPACK fields, one DATA frame without END_STREAM)."""
    def frame(kind: int, flags: int, stream: int, payload: bytes) -> bytes:
        return struct.pack(">I", len(payload))[1:] + bytes([kind, flags]) + struct.pack(">I", stream) + payload

    def literal(name: bytes, value: bytes) -> bytes:  # "literal header field without indexing, new name"
        return b"\x00" + bytes([len(name)]) + name + bytes([len(value)]) + value

    fields = b"".join(literal(k, v) for k, v in [
        (b":method", b"POST"), (b":scheme", b"http"), (b":authority", hostport.encode()),
        (b":path", b"/opentelemetry.proto.collector.trace.v1.TraceService/Export"),
        (b"content-type", b"application/grpc"), (b"te", b"trailers")])
    socks = []
    for _ in range(n):
        s = socket.create_connection(_addr(hostport))
        s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + frame(4, 0, 0, b"")  # preface + empty SETTINGS
                  + frame(1, 0x4, 1, fields)  # HEADERS, END_HEADERS
                  + frame(0, 0, 1, b"\x00" + struct.pack(">I", 100_000) + b"0123456789"))  # DATA, more to come
        socks.append(s)
    return socks


def export_with_sdk(exporter: object, n: int = 3) -> None:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))  # type: ignore[arg-type]
    for i in range(n):
        with provider.get_tracer("t").start_as_current_span(f"valid-{i}"):
            pass
    provider.shutdown()


def test_stalled_connections_do_not_stop_valid_http_and_grpc_traffic() -> None:
    sink, metrics = MemorySink(), Metrics()
    # timeouts far longer than the test: the attack lasts while the valid senders send
    with running_receiver(sink, metrics, max_concurrent_requests=8, read_timeout=60, read_header_timeout=60) as r:
        grpc_stalls = grpc_stalled_streams(r.grpc_address, 16)
        try:
            with stalled_connections(r.http_address, mid_body=16, mid_headers=8):
                t0 = time.monotonic()
                export_with_sdk(HttpSpans(endpoint=f"http://{r.http_address}/v1/traces", timeout=5))
                export_with_sdk(GrpcSpans(endpoint=r.grpc_address, insecure=True, timeout=5))
                took = time.monotonic() - t0
        finally:
            for s in grpc_stalls:
                s.close()
    assert sorted(s.name for s in sink.spans()) == ["valid-0", "valid-0", "valid-1", "valid-1", "valid-2", "valid-2"]
    assert took < 5  # served at once, not after retries
    assert metrics.value("rag.processor.refused", reason="busy") == 0


def test_a_body_that_stalls_is_cut_off_after_read_timeout_with_an_otlp_status() -> None:
    sink, metrics = MemorySink(), Metrics()
    with (running_receiver(sink, metrics, read_timeout=1.0, read_header_timeout=1.0) as r,
          stalled_connections(r.http_address, mid_body=1, mid_headers=1) as (body_stall, head_stall)):
        for s in (body_stall, head_stall):
            s.settimeout(5)
            t0 = time.monotonic()
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            assert time.monotonic() - t0 < 3  # closed by the server, not by our own timeout
            head, _, body = answer.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 408")
            assert b"application/x-protobuf" in head.lower()
            status = status_pb2.Status.FromString(body)
            assert status.code == code_pb2.DEADLINE_EXCEEDED and "within 1s" in status.message
    assert metrics.value("rag.processor.refused", reason="timeout") == 2
    assert sink.spans() == []


def test_grpc_streams_that_stall_are_cut_off_and_free_their_receive_slots() -> None:
    """Even stalled streams that take every receive slot hold them only for read_timeout."""
    sink, metrics = MemorySink(), Metrics()
    with running_receiver(sink, metrics, read_timeout=1.0, max_receiving_requests=2) as r:
        stalls = grpc_stalled_streams(r.grpc_address, 2)
        try:
            time.sleep(0.2)
            export_with_sdk(GrpcSpans(endpoint=r.grpc_address, insecure=True, timeout=10), n=1)
            deadline = time.monotonic() + 5
            while metrics.value("rag.processor.refused", reason="timeout") < 2 and time.monotonic() < deadline:
                time.sleep(0.05)  # the second stall may be cut off just after the valid export went through
        finally:
            for s in stalls:
                s.close()
    assert [s.name for s in sink.spans()] == ["valid-0"]
    assert metrics.value("rag.processor.refused", reason="timeout") == 2


@pytest.mark.parametrize("length", [b"12abc", b"-5", b"1, 2"])
def test_a_malformed_content_length_gets_an_otlp_status_and_one_log_line(
        length: bytes, caplog: pytest.LogCaptureFixture) -> None:
    sink, metrics = MemorySink(), Metrics()
    with running_receiver(sink, metrics) as r:
        answers = []
        for _ in range(20):
            with socket.create_connection(_addr(r.http_address)) as s:
                s.sendall(b"POST /v1/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\n"
                          b"Content-Length: " + length + b"\r\n\r\n\x0a\x00")
                s.settimeout(5)
                answer = b""
                while chunk := s.recv(65536):
                    answer += chunk
                answers.append(answer)
        good = httpx.post(f"http://{r.http_address}/v1/traces", content=b"",
                          headers={"content-type": "application/x-protobuf"})
    for answer in answers:
        head, _, body = answer.partition(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 400") and b"application/x-protobuf" in head.lower()
        status = status_pb2.Status.FromString(body)
        assert status.code == code_pb2.INVALID_ARGUMENT and "Content-Length" in status.message
    assert good.status_code == 200  # and the receiver still serves
    assert metrics.value("rag.processor.refused", reason="malformed") == 20
    invalid = [rec for rec in caplog.records if "malformed HTTP request" in rec.getMessage()
               or "Invalid HTTP request" in rec.getMessage()]
    assert len(invalid) == 1  # twenty bad requests, one line (rate limited)


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_the_bearer_scheme_is_case_insensitive_over_http_and_grpc(scheme: str) -> None:
    sink = MemorySink()
    with running_receiver(sink, bearer_token="s3cret") as r:
        export_with_sdk(HttpSpans(endpoint=f"http://{r.http_address}/v1/traces", timeout=5,
                                  headers={"authorization": f"{scheme} s3cret"}), n=1)
        export_with_sdk(GrpcSpans(endpoint=r.grpc_address, insecure=True, timeout=5,
                                  headers={"authorization": f"{scheme} s3cret"}), n=1)
        wrong = httpx.post(f"http://{r.http_address}/v1/traces", content=b"",
                           headers={"content-type": "application/x-protobuf", "authorization": f"{scheme} nope"})
    assert len(sink.spans()) == 2
    assert wrong.status_code == 401


def test_check_bearer_refuses_other_schemes_and_missing_tokens() -> None:
    assert check_bearer("t", "bearer t") and check_bearer("t", "Bearer   t ")
    assert not check_bearer("t", "Basic t") and not check_bearer("t", "Bearer") and not check_bearer("t", None)
    assert not check_bearer("t", "Bearert") and check_bearer(None, None)
