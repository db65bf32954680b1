"""Fleet-wide alert rules with real parts: PostgreSQL from Debian's package, three ``rag-otel serve``
processes on one DuckLake, traffic from the real OTel SDK split over them by trace id, and a real
HTTP webhook receiving the notifications.

A rule on queries per minute is breached only by the fleet's total (each replica sees a third of the
traffic, under the threshold): the fleet-scope rule fires exactly once, with the fleet's value,
while the same rule judged per replica never fires.  Killing the replica that leads the ``alerts``
job moves the job; the new leader does not notify the firing alert again and sends its resolve.
"""

from __future__ import annotations

import random
import re
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind

from tests.integration.test_fleet_store import TraceIdRouter, Webhook, health, wait_for
from tests.support.otlp_sink import OtlpSink
from tests.support.postgres import Postgres
from tests.support.serve_process import ServeProcess

N = 30  # queries sent in a burst
WINDOW = 40  # seconds
THRESHOLD = 30.0  # queries per minute: 20 queries in the window; the fleet's 30 are above, a replica's ~10 not


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


def send_now(exporter: SpanExporter, n: int, *, seed: int) -> None:
    """``n`` RAG queries happening now (a root span with a retrieval and a chat call each)."""
    rnd = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({"service.name": "answers"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fleet-alerts-test")
    for i in range(n):
        with tracer.start_as_current_span("rag.query", attributes={
                "rag.query.text": f"How do I rotate API key number {i}?", "user.id": f"user-{rnd.randrange(5)}"}):
            with tracer.start_as_current_span("retrieval faiss", kind=SpanKind.CLIENT,
                                              attributes={"gen_ai.operation.name": "retrieval"}):
                pass
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                    "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                    "gen_ai.request.model": "gpt-4o-mini", "gen_ai.usage.input_tokens": 400 + rnd.randrange(100),
                    "gen_ai.usage.output_tokens": 60}):
                pass
    provider.shutdown()


def config(path: Path, *, data: Path, sink: OtlpSink, url: str, lake: Path, hook: str) -> Path:
    rule = {"metric": "queries_per_minute", "operator": "gt", "threshold": THRESHOLD, "window": f"{WINDOW}s"}
    path.write_text(yaml.safe_dump({"model_observation": {
        "processor": {"data_dir": str(data), "trace_wait": 0.3, "shutdown_grace": 5, "lease_ttl": 3,
                      "exports": [{"url": sink.http_endpoint}], "store": url, "store_data_path": str(lake)},
        "performance_monitoring": {"alert_rules": [
            {"name": "fleet_traffic", **rule},  # no scope: fleet-wide, since the store is shared
            {"name": "replica_traffic", "scope": "replica", **rule},
        ]},
        "alerting": {"evaluation_interval": 0.5, "repeat_interval": "4h",
                     "notifiers": [{"type": "webhook", "url": hook}]},
        "reporting": {"out_dir": str(data / "reports"), "daily_report": {"enabled": False},
                      "weekly_report": {"enabled": False}},
    }}))
    return path


def epoch(iso: str) -> float:
    return datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp()


def firing_gauge(serve: ServeProcess) -> float:
    text = httpx.get(f"http://{serve.http}/metrics", timeout=5).text
    return sum(float(v) for v in re.findall(
        r'^rag_processor_alerts_firing\w*\{[^}]*rule="fleet_traffic"[^}]*\} (\S+)$', text, re.M))


def notified(hook: Webhook, rule: str) -> list[dict[str, Any]]:
    return [a for post in hook.posts for a in post["alerts"] if a["rule"] == rule]


def test_a_fleet_wide_breach_fires_once_with_fleet_totals_and_survives_a_leader_change(
        pg: Postgres, tmp_path: Path) -> None:
    hook = Webhook()
    with OtlpSink() as sink:
        cfg = config(tmp_path / "fleet.yaml", data=tmp_path / "data", sink=sink,
                     url=f"ducklake:postgres:{pg.conninfo}", lake=tmp_path / "lake", hook=hook.url)
        flags = ("--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--http", "127.0.0.1:0")
        replicas = [ServeProcess(cfg, *flags) for _ in range(3)]
        try:
            for s in replicas:
                s.start(timeout=60)
            wait_for(lambda: sum(health(s)["store"]["leader"]["alerts"] for s in replicas) == 1, 20, "an alerts leader")
            router = TraceIdRouter([OTLPSpanExporter(endpoint=f"http://{s.otlp_http}/v1/traces") for s in replicas],
                                   tee=_Nowhere())  # no reference processor here
            sent_at = time.time()
            send_now(router, N, seed=5)
            assert all(0 < n < THRESHOLD * WINDOW / 60 for n in router.routed), router.routed  # none breaches alone

            wait_for(lambda: notified(hook, "fleet_traffic"), 30, "the fleet alert")
            firing = notified(hook, "fleet_traffic")[0]
            assert firing["state"] == "firing" and len(notified(hook, "fleet_traffic")) == 1
            # its value is the fleet's rate: more queries than any one replica received
            assert firing["value"] * WINDOW / 60 > max(router.routed)
            assert firing["value"] > THRESHOLD and firing["value"] * WINDOW / 60 <= N
            # every replica shows the fleet's alert, not only the leader (followers read the shared state
            # every evaluation interval, so within a few of them)
            def firing_on(s: Any) -> list[str]:
                active = httpx.get(f"http://{s.http}/api/v1/alerts/active", timeout=5).json()
                return [a["rule"] for a in active if a["state"] == "firing"]

            for s in replicas:
                wait_for(lambda s=s: firing_on(s) == ["fleet_traffic"], 10, f"the fleet alert on {s.http}")

            # the firing gauge counts a fleet alert on its leader only: summed over the fleet, once
            wait_for(lambda: [firing_gauge(s) for s in replicas].count(1.0) == 1
                     and sum(firing_gauge(s) for s in replicas) == 1.0, 15, "the firing gauge")

            # kill the leader (no clean shutdown, no lease release): another replica takes the job
            leader = next(s for s in replicas if health(s)["store"]["leader"]["alerts"])
            leader._proc.kill()  # type: ignore[union-attr]
            rest = [s for s in replicas if s is not leader]
            wait_for(lambda: any(health(s)["store"]["leader"]["alerts"] for s in rest), 10, "a new alerts leader")
            new = next(s for s in rest if health(s)["store"]["leader"]["alerts"])
            st = next(a for a in httpx.get(f"http://{new.http}/api/v1/alerts/active", timeout=5).json()
                      if a["rule"] == "fleet_traffic")
            assert st["state"] == "firing" and st["fired_at"] == pytest.approx(epoch(firing["at"]))  # state kept
            assert time.time() - sent_at < WINDOW - 5, "the takeover must happen while the breach lasts"

            # the window empties: the new leader sends the resolve, and nothing fired twice
            wait_for(lambda: len(notified(hook, "fleet_traffic")) >= 2, WINDOW + 30, "the resolve")
            time.sleep(2)
            assert [a["state"] for a in notified(hook, "fleet_traffic")] == ["firing", "resolved"]
            assert notified(hook, "replica_traffic") == []  # per replica the breach was never there
        finally:
            for s in replicas:
                s.stop()
            hook.close()


class _Nowhere(SpanExporter):
    def export(self, spans: Any) -> SpanExportResult:
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass
