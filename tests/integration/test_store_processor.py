"""The StoreWriter inside a real ProcessorService: real OTLP traffic in (gRPC and HTTP, traces and
metrics), query records, alert events and system samples land in the DuckDB file, flushed on stop."""

from __future__ import annotations

import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.grpc.metric_exporter import OTLPMetricExporter as GrpcMetricExporter
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter as GrpcSpanExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as HttpSpanExporter
from opentelemetry.metrics import Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import Resource

from rag_otel.analytics import parse_period, run
from rag_otel.processor.service import ProcessorService
from rag_otel.store import Store
from tests.integration.test_processor_e2e import config, send_rag_traces
from tests.support.otlp_sink import OtlpSink


def send_cpu(grpc_address: str, value: float) -> None:
    mp = MeterProvider(resource=Resource.create({"service.name": "rag-app", "host.name": "h1"}), metric_readers=[
        PeriodicExportingMetricReader(GrpcMetricExporter(endpoint=grpc_address, insecure=True),
                                      export_interval_millis=60_000)])
    mp.get_meter("sys").create_observable_gauge("system.cpu.utilization",
                                                callbacks=[lambda _o: [Observation(value)]])
    mp.shutdown()


def test_processor_stores_what_it_receives(tmp_path: Path) -> None:
    with OtlpSink() as sink:
        cfg = config(sink, tmp_path)
        svc = ProcessorService(cfg, metrics_interval=0.3).start()
        try:
            assert svc.store is not None and Path(svc.store.path).parent == Path(cfg.processor.data_dir)
            send_rag_traces(GrpcSpanExporter(endpoint=svc.receiver.grpc_address, insecure=True), n=2, user="alice")
            send_rag_traces(HttpSpanExporter(endpoint=f"http://{svc.receiver.http_address}/v1/traces"),
                            user="bob", fail=True)
            sink.wait_for_spans("rag.query", count=3)
            assert svc.pipeline.wait_idle(10)
            svc.pipeline.evaluate_alerts()  # costly_queries fires: an alert event for the store
            send_cpu(svc.receiver.grpc_address, 0.42)
            deadline = time.monotonic() + 10
            while svc.store.count("system_samples") < 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert svc.store_writer.flush(10)
            rows = svc.store.recent_queries(10)
            assert sorted((r["user_id"], r["status"]) for r in rows) == [
                ("alice", "ok"), ("alice", "ok"), ("bob", "error")]
            r = rows[0]
            assert r["model"] == "gpt-4o-mini" and r["input_tokens"] >= 420 and r["cost_usd"] > 0
            assert r["q_overall"] is not None and r["q_status"] == "scored" and r["documents"] == 2
            # content capture is scoring_only: labels from the text, the text itself is not kept
            # ("capital": the topic heuristic breaks at "of"; joining there scored worse on held-out queries)
            assert (r["category"], r["topic"], r["query_text"]) == ("factual", "capital", None)
            assert [(a["rule"], a["state"]) for a in svc.store.alerts_history()] == [("costly_queries", "firing")]
            cpu = svc.store.sql("SELECT cpu_percent, host FROM system_samples")
            assert cpu == [(42.0, "h1")]
            assert svc.health()["store"]["written"] == 3
            perf = run("performance", svc.store, parse_period("1h"))
            assert perf["total"] == 3 and perf["errors"] == 1
        finally:
            assert svc.stop()
    with Store.open(cfg.processor.data_dir, read_only=True) as store:  # persisted, and readable after stop
        assert store.count("queries") == 3 and store.count("alerts") == 1


def test_the_service_raises_gc_thresholds_for_its_process(tmp_path: Path) -> None:
    import gc

    from rag_otel.processor.pipeline import GC_THRESHOLDS

    before = gc.get_threshold()
    gc.set_threshold(700, 10, 10)
    try:
        with OtlpSink() as sink:
            svc = ProcessorService(config(sink, tmp_path)).start()
            try:
                assert gc.get_threshold() == GC_THRESHOLDS
            finally:
                svc.stop()
    finally:
        gc.set_threshold(*before)
