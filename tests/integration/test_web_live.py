"""The dashboard's WebSocket feed on a real running processor (real sockets, the `websockets` client)."""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack
from itertools import pairwise
from pathlib import Path

import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import ClientConnection, connect

from rag_otel.config import ModelObservation
from rag_otel.processor.service import ProcessorService
from rag_otel.records import AxisScore, QualityResult, QueryRecord

MAX = 3
INTERVAL = 0.2


def record(i: int, *, latency: float = 0.8, status: str = "ok") -> QueryRecord:
    now = time.time()
    q = QualityResult(axes={"relevance": AxisScore(0.8)}, overall=0.8, evaluator="lexical/1", grade="good")
    return QueryRecord(trace_id=f"{i + 1:032x}", root_span_id=f"{i + 1:016x}", start_time=now - latency - 5,
                       end_time=now - 5, service="rag-app", user_id=f"u{i % 3}", session_id=f"s{i % 2}",
                       models=["gpt-4o-mini"], input_tokens=100, output_tokens=20, cost_usd=0.001, status=status,
                       quality=q)  # type: ignore[arg-type]


def config(tmp_path: Path, token_env: str | None = None) -> ModelObservation:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.shutdown_grace = 3.0
    p.api_token_env = token_env
    cfg.dashboards.real_time.update_interval = INTERVAL
    cfg.dashboards.real_time.max_subscribers = MAX
    cfg.dashboards.jaeger_ui_url = "http://127.0.0.1:16686"
    return cfg


@pytest.fixture
def svc(tmp_path: Path) -> Iterator[ProcessorService]:
    s = ProcessorService(config(tmp_path)).start()
    s.store.write_records([record(i, status="error" if i == 0 else "ok") for i in range(4)])
    try:
        yield s
    finally:
        s.stop()


def url(svc: ProcessorService, query: str = "") -> str:
    return f"ws://{svc.http_address}/api/v1/live{query}"


def frames(ws: ClientConnection, n: int) -> list[dict]:
    return [json.loads(ws.recv(timeout=5)) for _ in range(n)]


def test_snapshot_fills_every_panel(svc: ProcessorService) -> None:
    with connect(url(svc)) as ws:
        s = frames(ws, 1)[0]
    assert s["health"]["status"] == "ok"
    assert s["performance"]["queries"] == 4 and s["performance"]["errors"] == 1
    assert s["performance"]["success_rate"] == 0.75
    assert s["quality"]["avg_overall"] == 0.8 and s["quality"]["axes"]["relevance"] == 0.8
    # sessions as the analytics count them (a user's queries without a 30-minute gap), not the apps' session ids
    assert s["usage"]["users"] == 3 and s["usage"]["sessions"] == 3 and s["usage"]["input_tokens"] == 400
    assert s["usage"]["models"] == [{"model": "gpt-4o-mini", "queries": 4}]
    assert sum(s["timeline"]) == 4
    assert [r["trace_id"] for r in s["recent"]] == [f"{i:032x}" for i in (4, 3, 2, 1)]
    assert s["recent"][0]["trace_url"] == f"http://127.0.0.1:16686/trace/{4:032x}"
    assert s["interval_s"] == INTERVAL and s["viewers"] == 1


def test_new_records_show_up_on_the_next_tick(svc: ProcessorService) -> None:
    with connect(url(svc)) as ws:
        assert frames(ws, 1)[0]["performance"]["queries"] == 4
        ws.send(b"\x00junk")  # whatever a client sends is ignored, never breaks its feed
        ws.send("hello")
        svc.store.write_records([record(10), record(11)])
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:
            if frames(ws, 1)[0]["performance"]["queries"] == 6:
                break
        else:
            pytest.fail("the new records never reached the live feed")


def test_every_subscriber_gets_the_same_snapshot_each_tick(svc: ProcessorService) -> None:
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(url(svc))) for _ in range(MAX)]
        time.sleep(INTERVAL)  # all three subscribed before we compare
        seqs = [[(f["time"], f["viewers"]) for f in frames(ws, 6)] for ws in clients]
        common = set.intersection(*(set(s) for s in seqs))
        # one computation per tick, broadcast: the same snapshot object (same "time") reached everyone
        assert len(common) >= 4
        times = sorted(t for t, viewers in common if viewers == MAX)
        gaps = [b - a for a, b in pairwise(times)]
        # ticks keep their cadence: a snapshot's own time is as late as its thread started, and the next tick
        # still starts on time (seen under load: gaps 0.10, 0.20, 0.20 s), so the mean gap is the cadence
        assert gaps and INTERVAL * 0.7 < sum(gaps) / len(gaps) < INTERVAL * 1.5, gaps
        assert max(gaps) < INTERVAL * 3, gaps


def test_one_over_max_subscribers_is_refused_with_1013_and_a_reason(svc: ProcessorService) -> None:
    with ExitStack() as stack:
        clients = [stack.enter_context(connect(url(svc))) for _ in range(MAX)]
        for ws in clients:
            frames(ws, 1)
        with connect(url(svc)) as extra, pytest.raises(ConnectionClosed) as closed:
            extra.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1013
        assert "dashboard full" in closed.value.rcvd.reason and str(MAX) in closed.value.rcvd.reason
        clients.pop().close()  # a slot frees up: the next viewer gets in
        deadline = time.monotonic() + 3
        while True:
            try:
                with connect(url(svc)) as again:
                    assert frames(again, 1)[0]["health"]["status"] == "ok"
                break
            except ConnectionClosed:
                assert time.monotonic() < deadline, "the freed slot was never reused"
                time.sleep(0.05)


def test_live_feed_needs_the_token_when_auth_is_on(tmp_path: Path) -> None:
    env = {"RAG_OTEL_TEST_LIVE_TOKEN": "t0k"}
    svc = ProcessorService(config(tmp_path, "RAG_OTEL_TEST_LIVE_TOKEN"), env=env).start()
    try:
        with connect(url(svc)) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        with connect(url(svc, "?token=t0k")) as ws:
            assert frames(ws, 1)[0]["health"]["status"] == "ok"
        with connect(url(svc), additional_headers={"Authorization": "Bearer t0k"}) as ws:
            assert frames(ws, 1)[0]["health"]["status"] == "ok"
    finally:
        svc.stop()


def test_live_feed_off_says_so(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.dashboards.real_time.enabled = False
    svc = ProcessorService(cfg).start()
    try:
        with connect(url(svc)) as ws, pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=5)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008
        assert "dashboards.real_time.enabled" in closed.value.rcvd.reason
    finally:
        svc.stop()


def stalled_client(svc: ProcessorService) -> socket.socket:
    """A real WebSocket client that completes the handshake and then never reads (a tiny receive buffer)."""
    host, port = svc.http_address.rsplit(":", 1)
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    sock.connect((host, int(port)))
    key = base64.b64encode(os.urandom(16)).decode()
    sock.sendall(f"GET /api/v1/live HTTP/1.1\r\nHost: {svc.http_address}\r\nUpgrade: websocket\r\n"
                 f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n".encode())
    assert sock.recv(12) == b"HTTP/1.1 101"
    return sock


def test_a_client_that_stops_reading_is_dropped_and_the_others_keep_their_rate(tmp_path: Path) -> None:
    cfg = config(tmp_path)
    cfg.dashboards.real_time.update_interval = 0.1
    cfg.dashboards.real_time.max_subscribers = 2
    svc = ProcessorService(cfg).start()
    # ~300 kB frames (long user ids in the recent rows) fill the loopback buffers in about a second instead of
    # the minutes ~2 kB frames would take; the behaviour under test does not depend on the size.
    svc.store.write_records([dataclasses.replace(record(i), user_id=f"u{i}-" + "x" * 30_000) for i in range(10)])
    stalled = stalled_client(svc)
    try:
        with connect(url(svc), max_size=None) as ws:
            deadline = time.monotonic() + 10
            while json.loads(ws.recv(timeout=5))["viewers"] == 2:
                assert time.monotonic() < deadline, "the client that stopped reading was never dropped"
            times = [json.loads(ws.recv(timeout=5))["time"] for _ in range(8)]
            # its viewer slot is free again (max_subscribers is 2), although its TCP connection never closed
            with connect(url(svc), max_size=None) as again:
                assert json.loads(again.recv(timeout=5))["health"]["status"] == "ok"
        gaps = [b - a for a, b in pairwise(times)]
        assert all(0.07 < g < 0.3 for g in gaps), gaps  # the configured 0.1 s, not stalled behind the slow one
    finally:
        stalled.close()
        svc.stop()
