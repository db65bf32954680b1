"""The downstream fan-out against real OTLP receivers (our own receiver, in-memory sink) over
gRPC and HTTP: delivery intact, dead and slow downstreams, bounded memory, shutdown flush."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import psutil
import pytest
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs
from opentelemetry.proto.metrics.v1.metrics_pb2 import ResourceMetrics

from rag_otel.config import Endpoint
from rag_otel.processor.exporter import OtlpFanOut, RetryPolicy
from rag_otel.processor.sink import MemorySink
from tests.support.otlp_io import Metrics, free_port, resource_spans, running_receiver, self_signed_cert

FAST_RETRY = RetryPolicy(initial_backoff=0.05, max_backoff=0.2, max_elapsed=60)


def urls(receiver) -> list[str]:
    return [f"grpc://{receiver.grpc_address}", f"http://{receiver.http_address}"]


@pytest.fixture
def fanout_factory() -> Iterator:
    made: list[OtlpFanOut] = []

    def make(endpoints: list[str | Endpoint], metrics: Metrics, **kw: object) -> OtlpFanOut:
        eps = [e if isinstance(e, Endpoint) else Endpoint(url=e, timeout=5) for e in endpoints]
        kw.setdefault("retry", FAST_RETRY)
        fo = OtlpFanOut(eps, metrics.meter, **kw)  # type: ignore[arg-type]
        fo.start()
        made.append(fo)
        return fo

    yield make
    for fo in made:
        fo.shutdown(0.5)


def a_metric() -> ResourceMetrics:
    rm = ResourceMetrics()
    m = rm.scope_metrics.add().metrics.add()
    m.name, m.unit = "gen_ai.client.token.usage", "{token}"
    h = m.histogram
    h.aggregation_temporality = 2
    dp = h.data_points.add()
    dp.count, dp.sum = 3, 120.0
    dp.bucket_counts.extend([0, 1, 2])
    dp.explicit_bounds.extend([16, 64])
    kv = dp.attributes.add()
    kv.key, kv.value.string_value = "gen_ai.token.type", "input"
    return rm


def a_log() -> ResourceLogs:
    rl = ResourceLogs()
    rec = rl.scope_logs.add().log_records.add()
    rec.body.string_value, rec.event_name, rec.trace_id = "feedback", "rag.feedback", bytes(range(16))
    return rl


@pytest.mark.parametrize("proto", ["grpc", "http"])
def test_traces_metrics_logs_arrive_intact(proto: str, fanout_factory) -> None:
    down, metrics = MemorySink(), Metrics()
    with running_receiver(down) as receiver:
        url = urls(receiver)[0 if proto == "grpc" else 1]
        fo = fanout_factory([url], metrics, batch_size=100)
        spans = [resource_spans(10, tag=f"r{i}-") for i in range(25)]
        fo.export_spans(spans)
        fo.export_metrics([a_metric()])
        fo.export_logs([a_log()])
        assert fo.flush(10)
    got = [rs for req in down.traces for rs in req.resource_spans]
    assert got == spans  # byte-for-byte the same resources, in order
    assert [len(r.resource_spans) for r in down.traces] == [10, 10, 5]  # batches of <= 100 spans
    assert down.metrics[0].resource_metrics[0] == a_metric()  # app metrics pass through unchanged
    assert down.logs[0].resource_logs[0] == a_log()
    assert metrics.value("rag.processor.exported", endpoint=url, signal="spans") == 250
    assert metrics.value("rag.processor.exported", signal="metric_points") == 1
    assert metrics.value("rag.processor.exported", signal="log_records") == 1
    assert metrics.value("rag.processor.export.dropped") == 0


def test_fan_out_to_grpc_and_http_with_headers(fanout_factory) -> None:
    down, metrics = MemorySink(), Metrics()
    with running_receiver(down, bearer_token="t0k") as receiver:
        eps = [Endpoint(url=u, headers={"Authorization": "Bearer t0k"}) for u in urls(receiver)]
        fo = fanout_factory(eps, metrics)
        fo.export_spans([resource_spans(7)])
        assert fo.flush(10)
    assert len(down.spans()) == 14  # each endpoint got all 7


def test_dead_downstream_retries_drops_oldest_beyond_bound_and_delivers_the_rest(fanout_factory) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    metrics = Metrics()
    fo = fanout_factory([url], metrics, queue_size=200, batch_size=50, max_delay=0.01)
    for i in range(50):  # 500 spans into a queue of 200
        fo.export_spans([resource_spans(10, tag=f"{i:02d}-")])
    assert fo.queues[0].depth <= 200 + 50  # queued + the batch being retried
    deadline = time.monotonic() + 5
    while metrics.value("rag.processor.export.retried") == 0 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert metrics.value("rag.processor.export.retried", endpoint=url) > 0
    dropped = metrics.value("rag.processor.export.dropped", endpoint=url, reason="queue_full")
    assert dropped == 500 - fo.queues[0].depth
    down = MemorySink()
    with running_receiver(down, http_endpoint=f"127.0.0.1:{port}", grpc_endpoint=None):
        assert fo.flush(10)
    names = [s.name for s in down.spans()]
    assert len(names) == 500 - dropped  # nothing lost within the bound
    assert "49-9" in names  # the newest survived: the oldest were dropped
    assert metrics.value("rag.processor.exported", endpoint=url) == len(names)


def test_within_the_bound_nothing_is_lost_while_down(fanout_factory) -> None:
    port = free_port()
    metrics = Metrics()
    fo = fanout_factory([f"grpc://127.0.0.1:{port}"], metrics, queue_size=1000, batch_size=100, max_delay=0.01)
    for i in range(15):
        fo.export_spans([resource_spans(10, tag=f"{i}-")])
    time.sleep(0.3)  # a few failed attempts
    down = MemorySink()
    with running_receiver(down, grpc_endpoint=f"127.0.0.1:{port}", http_endpoint=None):
        assert fo.flush(10)
    assert len(down.spans()) == 150
    assert metrics.value("rag.processor.export.dropped") == 0


def test_a_dead_downstream_keeps_memory_bounded(fanout_factory) -> None:
    metrics = Metrics()
    fo = fanout_factory([f"http://127.0.0.1:{free_port()}"], metrics, queue_size=1000, batch_size=100)
    batch = [resource_spans(10) for _ in range(100)]
    rss = psutil.Process().memory_info().rss
    for _ in range(100):  # 100,000 spans, ~15 MB encoded
        fo.export_spans(batch)
    assert fo.queues[0].depth <= 1100
    assert psutil.Process().memory_info().rss - rss < 10 << 20
    assert metrics.value("rag.processor.export.dropped", reason="queue_full") >= 100_000 - 1100


class _SlowSink(MemorySink):
    """A downstream that takes ``delay`` seconds per request."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay

    def offer_traces(self, request):
        time.sleep(self.delay)
        return super().offer_traces(request)


def test_a_slow_downstream_does_not_slow_the_others(fanout_factory) -> None:
    slow, fast, metrics = _SlowSink(2.0), MemorySink(), Metrics()
    with running_receiver(slow) as slow_rx, running_receiver(fast) as fast_rx:
        fo = fanout_factory([f"grpc://{slow_rx.grpc_address}", f"http://{fast_rx.http_address}"], metrics,
                            batch_size=10, max_delay=0.01)
        t0 = time.monotonic()
        for i in range(5):
            fo.export_spans([resource_spans(10, tag=f"{i}-")])
        assert fast.wait_for(lambda s: len(s.spans()) == 50, timeout=1.5)
        assert time.monotonic() - t0 < 1.5  # while the slow one is still on its first batch
        assert slow.spans() == []
        slow.delay = 0
        assert fo.flush(10)
    assert len(slow.spans()) == 50


def test_shutdown_flushes_within_grace(fanout_factory) -> None:
    down, metrics = MemorySink(), Metrics()
    with running_receiver(down) as receiver:
        fo = OtlpFanOut([Endpoint(url=u) for u in urls(receiver)], metrics.meter, max_delay=60, retry=FAST_RETRY)
        fo.start()
        fo.export_spans([resource_spans(10) for _ in range(30)])
        time.sleep(0.1)
        assert down.spans() == []  # still batching (max_delay 60 s)
        t0 = time.monotonic()
        assert fo.shutdown(grace_seconds=5) is True
        assert time.monotonic() - t0 < 2
    assert len(down.spans()) == 600


def test_shutdown_with_a_dead_downstream_ends_on_time_and_counts_the_loss() -> None:
    metrics = Metrics()
    url = f"grpc://127.0.0.1:{free_port()}"
    fo = OtlpFanOut([Endpoint(url=url)], metrics.meter, retry=RetryPolicy(initial_backoff=5, max_backoff=5))
    fo.start()
    fo.export_spans([resource_spans(10) for _ in range(3)])
    t0 = time.monotonic()
    assert fo.shutdown(grace_seconds=0.5) is False
    assert time.monotonic() - t0 < 2.0
    assert metrics.value("rag.processor.export.dropped", endpoint=url, reason="shutdown") == 30


def test_downstream_back_pressure_is_retried_then_delivered(fanout_factory) -> None:
    down, metrics = MemorySink(capacity=0, retry_after=0.1), Metrics()
    with running_receiver(down) as receiver:
        fo = fanout_factory([f"grpc://{receiver.grpc_address}"], metrics, max_delay=0.01)
        fo.export_spans([resource_spans(5)])
        deadline = time.monotonic() + 5
        while metrics.value("rag.processor.export.retried") < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        assert metrics.value("rag.processor.export.retried") >= 10  # honours RetryInfo 0.1 s
        down.capacity = None
        assert fo.flush(5)
    assert len(down.spans()) == 5
    assert metrics.value("rag.processor.export.dropped") == 0


def test_http_retry_after_is_honoured(fanout_factory) -> None:
    down, metrics = MemorySink(capacity=0), Metrics()  # answers 503 + Retry-After: 1
    with running_receiver(down) as receiver:
        fo = fanout_factory([f"http://{receiver.http_address}"], metrics, max_delay=0.01,
                            retry=RetryPolicy(initial_backoff=0.05, max_backoff=5))
        fo.export_spans([resource_spans(5)])
        time.sleep(0.7)
        # our own backoff (0.05 s, doubling) would have retried ~4 times by now; the server said 1 s
        assert metrics.value("rag.processor.export.retried") == 5
        down.capacity = None
        assert fo.flush(5)
    assert len(down.spans()) == 5


def test_export_never_blocks_the_caller(fanout_factory) -> None:
    slow, metrics = _SlowSink(2.0), Metrics()
    with running_receiver(slow) as receiver:
        fo = fanout_factory([f"http://{receiver.http_address}"], metrics, max_delay=0.01)
        done = threading.Event()

        def pipeline() -> None:
            for _ in range(200):
                fo.export_spans([resource_spans(5)])
            done.set()

        threading.Thread(target=pipeline).start()
        assert done.wait(1.0)  # 200 exports while the downstream takes 2 s per request
        slow.delay = 0


def test_permanent_refusal_is_not_retried_and_counted(fanout_factory) -> None:
    down, metrics = MemorySink(), Metrics()
    with running_receiver(down, bearer_token="needed") as receiver:
        fo = fanout_factory(urls(receiver), metrics, max_delay=0.01)  # no token: 401 / UNAUTHENTICATED
        fo.export_spans([resource_spans(4)])
        assert fo.flush(5)
    assert metrics.value("rag.processor.export.retried") == 0
    assert metrics.value("rag.processor.export.dropped", reason="rejected_downstream") == 8
    assert down.spans() == []


def test_a_batch_is_given_up_after_max_elapsed(fanout_factory) -> None:
    metrics = Metrics()
    url = f"http://127.0.0.1:{free_port()}"
    fo = fanout_factory([url], metrics, max_delay=0.01,
                        retry=RetryPolicy(initial_backoff=0.05, max_backoff=0.1, max_elapsed=0.4))
    fo.export_spans([resource_spans(6)])
    deadline = time.monotonic() + 5
    while metrics.value("rag.processor.export.dropped") == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert metrics.value("rag.processor.export.dropped", endpoint=url, reason="retries_exhausted") == 6
    assert fo.queues[0].depth == 0


def test_https_export_to_a_tls_downstream(fanout_factory, tmp_path, monkeypatch) -> None:
    cert, key = self_signed_cert(tmp_path)
    monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # how a user trusts a private CA for https:// endpoints
    down, metrics = MemorySink(), Metrics()
    with running_receiver(down, tls_cert_file=str(cert), tls_key_file=str(key)) as receiver:
        fo = fanout_factory([f"https://{receiver.http_address}"], metrics)
        fo.export_spans([resource_spans(3)])
        assert fo.flush(5)
    assert len(down.spans()) == 3
