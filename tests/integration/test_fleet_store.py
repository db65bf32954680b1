"""Fleet mode with real parts: a PostgreSQL cluster from Debian's package (started here), three
``rag-otel serve`` processes on one DuckLake, and a fourth on its own DuckDB file as the reference.

Traffic comes from the real OTel SDK and is split over the replicas by trace id, as the Collector's
``load_balancing`` exporter does; every trace also goes to the reference processor.  The fleet's
analytics and daily report (read with the real CLI and ``--store``) must equal the reference's; one
scheduled report is delivered for the whole fleet; killing the leader moves its jobs; and while
PostgreSQL is stopped the replicas keep accepting and exporting, and write everything afterwards.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter, SpanExportResult
from opentelemetry.trace import SpanKind, Status, StatusCode

from rag_otel.store.lake import LakeStore
from tests.support.otlp_sink import OtlpSink
from tests.support.postgres import Postgres
from tests.support.serve_process import ServeProcess

YESTERDAY = (datetime.now(timezone.utc) - timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
QUESTIONS = ["How do I reset my password?", "What is the refund policy?", "Why does export fail with error 500?",
             "Compare the pro and team plans", "hello", "How many seats does the team plan include?",
             "Where are invoices stored?", "How to configure SSO with Okta"]
MODELS = [("gpt-4o-mini", 420, 35), ("gpt-4o", 900, 120), ("claude-3-5-haiku", 610, 80)]


class TraceIdRouter(SpanExporter):
    """The ``load_balancing`` exporter's routing in miniature: every span of a trace to one backend,
    chosen from a hash of the trace id; plus a copy of everything to ``tee`` (the reference)."""

    def __init__(self, backends: Sequence[SpanExporter], tee: SpanExporter) -> None:
        self.backends, self.tee = list(backends), tee
        self.routed = [0] * len(self.backends)

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        groups: dict[int, list[ReadableSpan]] = {}
        for s in spans:
            digest = hashlib.sha256(s.context.trace_id.to_bytes(16, "big")).digest()
            groups.setdefault(int.from_bytes(digest[:4], "big") % len(self.backends), []).append(s)
        results = [self.tee.export(spans)]
        for i, group in groups.items():
            self.routed[i] += sum(1 for s in group if s.parent is None)
            results.append(self.backends[i].export(group))
        return SpanExportResult.SUCCESS if all(r == SpanExportResult.SUCCESS for r in results) \
            else SpanExportResult.FAILURE

    def shutdown(self) -> None:
        for b in (*self.backends, self.tee):
            b.shutdown()


def send_traffic(exporter: SpanExporter, n: int, *, seed: int, day: datetime = YESTERDAY, batch: bool = False) -> None:
    """``n`` RAG queries spread over ``day``: several users, models, categories, failures and latencies
    (``batch``: all in one export request at the end, like a Collector flushing its queue)."""
    rnd = random.Random(seed)
    provider = TracerProvider(resource=Resource.create({"service.name": "answers"}))
    provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=4096, max_export_batch_size=4096,
                                                   schedule_delay_millis=60_000) if batch
                                else SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("fleet-test")
    for i in range(n):
        start = day + timedelta(seconds=rnd.uniform(60, 86_000))
        t0 = int(start.timestamp() * 1e9)
        dur = int(rnd.choice([0.3, 0.8, 1.4, 2.6, 4.2, 9.0]) * rnd.uniform(0.8, 1.2) * 1e9)
        q = rnd.choice(QUESTIONS)
        model, tin, tout = rnd.choice(MODELS)
        root = tracer.start_span("rag.query", start_time=t0, attributes={
            "rag.query.text": q, "rag.answer.text": f"Answer about {q.lower()} from the docs.",
            "rag.content.capture": "scoring_only", "user.id": f"user-{rnd.randrange(9)}",
            "session.id": f"s-{rnd.randrange(20)}"})
        from opentelemetry import trace

        ctx = trace.set_span_in_context(root)
        ret = tracer.start_span("retrieval faiss", context=ctx, kind=SpanKind.CLIENT, start_time=t0 + 1000,
                                attributes={"gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss",
                                            "gen_ai.request.top_k": 2, "gen_ai.retrieval.documents": json.dumps(
                                                [{"id": "doc-1", "score": rnd.uniform(0.3, 0.9)}])})
        ret.end(end_time=t0 + dur // 5)
        chat = tracer.start_span(f"chat {model}", context=ctx, kind=SpanKind.CLIENT, start_time=t0 + dur // 5,
                                 attributes={"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                                             "gen_ai.request.model": model, "gen_ai.response.model": model,
                                             "gen_ai.usage.input_tokens": tin + rnd.randrange(200),
                                             "gen_ai.usage.output_tokens": tout + rnd.randrange(60)})
        chat.end(end_time=t0 + dur - 1000)
        if i % 9 == 4:
            root.set_status(Status(StatusCode.ERROR, "upstream timeout"))
        root.end(end_time=t0 + dur)
    provider.shutdown()


class Webhook:
    """Counts the report deliveries (``reporting.webhook_url``) the fleet makes."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", 0)))
                outer.posts.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *a: Any) -> None:
                pass

        self.server = HTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/reports"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def rag_otel(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "rag_otel.cli", *args], capture_output=True, text=True,
                          timeout=180, env={**os.environ, "COLUMNS": "200"})


def write_config(path: Path, *, data: Path, sink: OtlpSink, webhook: str | None, **processor: Any) -> Path:
    path.write_text(yaml.safe_dump({"model_observation": {
        "processor": {"data_dir": str(data), "trace_wait": 0.3, "shutdown_grace": 5, "lease_ttl": 3,
                      "exports": [{"url": sink.http_endpoint}], **processor},
        "content": {"capture": "scoring_only"},
        "reporting": {"out_dir": str(data / "reports"), "webhook_url": webhook, "formats": ["json"],
                      "daily_report": {"enabled": webhook is not None, "time": "00:00"},
                      "weekly_report": {"enabled": False, "day": "monday"}},
    }}))
    return path


def health(serve: ServeProcess) -> dict[str, Any]:
    return httpx.get(f"http://{serve.http}/health", timeout=5).json()


def wait_for(cond: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def approx_equal(a: Any, b: Any, path: str = "") -> None:
    """Equal, floats to 1e-9 relative (sums over the lake add the same numbers in another order)."""
    if isinstance(a, float) or isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-9, abs=1e-6), path
    elif isinstance(a, dict) and isinstance(b, dict):
        assert sorted(a) == sorted(b), path
        for k in a:
            approx_equal(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, list) and isinstance(b, list):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            approx_equal(x, y, f"{path}[{i}]")
    else:
        assert a == b, path


def without(d: Any, keys: set[str]) -> Any:
    if isinstance(d, dict):
        return {k: without(v, keys) for k, v in d.items() if k not in keys}
    if isinstance(d, list):
        return [without(x, keys) for x in d]
    return d


@pytest.fixture(scope="module")
def pg() -> Iterator[Postgres]:
    with Postgres() as server:
        yield server


def test_replicas_creating_a_new_lake_together_all_start(pg: Postgres, tmp_path: Path) -> None:
    """Three replicas of a fresh deployment attach a lake nobody has created yet, at the same moment."""
    url = f"ducklake:postgres:{pg.createdb('fresh')}"
    opened: list[Any] = []
    errors: list[BaseException] = []
    go = threading.Barrier(3)

    def replica() -> None:
        go.wait()
        try:
            opened.append(LakeStore.open_lake(url, data_path=str(tmp_path / "lake")))
        except BaseException as e:
            errors.append(e)

    threads = [threading.Thread(target=replica) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    try:
        assert not errors, errors
        assert len(opened) == 3 and {s.schema_version for s in opened} == {opened[0].schema_version}
        assert opened[0].sql("SELECT count(*) FROM schema_version")[0][0] == opened[0].schema_version + 1
    finally:
        for s in opened:
            s.close()


def test_maintenance_merges_the_small_files_of_many_batches_and_keeps_every_row(pg: Postgres, tmp_path: Path) -> None:
    from rag_otel.analytics import parse_period, run
    from rag_otel.store.maintenance import Maintenance
    from tests.support.store_data import generate

    recs = generate(seed=3, days=1, per_day=300).records
    with LakeStore.open_lake(f"ducklake:postgres:{pg.createdb('maint')}", data_path=str(tmp_path)) as lake:
        for i in range(0, 300, 50):  # six writer batches: six small Parquet files for queries
            lake.write_records(recs[i:i + 50])
        files = lambda: lake.sql("SELECT count(*) FROM ducklake_list_files('lake', 'queries')")[0][0]  # noqa: E731
        period = parse_period("3650d")
        before = run("performance", lake, period)
        assert files() == 6
        done = Maintenance(lake, lambda: True).run_once()
        assert done["compaction"]["merged"] >= 1 and files() == 1
        assert lake.count("queries") == 300 and run("performance", lake, period) == before


def test_lease_one_holder_expiry_takeover_and_release(pg: Postgres, tmp_path: Path) -> None:
    from rag_otel.store.lake import PG_ALIAS
    from rag_otel.store.lease import CatalogLease

    with LakeStore.open_lake(f"ducklake:postgres:{pg.createdb('leases')}", data_path=str(tmp_path)) as lake:
        a = CatalogLease(lake.catalog_cursor, PG_ALIAS, "reports", ttl=1.5, holder="a")
        b = CatalogLease(lake.catalog_cursor, PG_ALIAS, "reports", ttl=1.5, holder="b")
        other_job = CatalogLease(lake.catalog_cursor, PG_ALIAS, "maintenance", ttl=1.5, holder="b")
        assert a.try_acquire() and a.held and a.owner() == "a"
        assert not b.try_acquire() and not b.held  # one holder per job...
        assert other_job.try_acquire()  # ...and jobs are independent
        assert a.try_acquire()  # renewal keeps it
        time.sleep(1.7)  # a stops renewing (dies): its lease runs out
        assert not a.held  # and it stopped counting itself leader before that
        assert b.try_acquire() and b.owner() == "b" and not a.try_acquire()
        b.release()  # a clean shutdown hands over at once
        assert a.try_acquire()


def test_three_replicas_one_lake_equal_one_processor(pg: Postgres, tmp_path: Path) -> None:
    url = f"ducklake:postgres:{pg.conninfo}"
    lake_dir = tmp_path / "lake"
    # the fleet has run before: yesterday's daily report is the one due (a first start would skip it)
    with LakeStore.open_lake(url, data_path=str(lake_dir)) as lake:
        lake.write_report_run("daily", YESTERDAY - timedelta(days=1), YESTERDAY, status="ok",
                              outputs={"trigger": "schedule", "name": "earlier"})
    webhook = Webhook()
    with OtlpSink() as sink:
        fleet_cfg = write_config(tmp_path / "fleet.yaml", data=tmp_path / "fleet-data", sink=sink,
                                 webhook=webhook.url, store=url, store_data_path=str(lake_dir))
        ref_cfg = write_config(tmp_path / "ref.yaml", data=tmp_path / "ref-data", sink=sink, webhook=None)
        flags = ("--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--http", "127.0.0.1:0")
        replicas = [ServeProcess(fleet_cfg, *flags) for _ in range(3)]
        ref = ServeProcess(ref_cfg, *flags)
        try:
            for s in [*replicas, ref]:
                s.start(timeout=60)
            exporters = [OTLPSpanExporter(endpoint=f"http://{s.otlp_http}/v1/traces") for s in replicas]
            router = TraceIdRouter(exporters, OTLPSpanExporter(endpoint=f"http://{ref.otlp_http}/v1/traces"))
            send_traffic(router, 90, seed=7)
            assert all(n > 10 for n in router.routed), router.routed  # every replica got a share
            wait_for(lambda: sum(health(s)["store"]["written"] for s in replicas) == 90, 60, "fleet writes")
            wait_for(lambda: health(ref)["store"]["written"] == 90, 60, "reference writes")
            assert sorted(health(s)["store"]["written"] for s in replicas) == sorted(router.routed)

            # exactly one replica leads each job, and exactly one daily report went out for the fleet
            wait_for(lambda: len(webhook.posts) >= 1, 30, "the scheduled report")
            leaders = [s for s in replicas if health(s)["store"]["leader"]["reports"]]
            assert len(leaders) == 1
            assert sum(health(s)["store"]["leader"]["maintenance"] for s in replicas) == 1
            time.sleep(3)
            assert len(webhook.posts) == 1, webhook.posts

            # any replica serves the fleet's history; the live view says whose numbers it shows
            for s in replicas:
                queries = httpx.get(f"http://{s.http}/api/v1/queries", params={"limit": 500}, timeout=10).json()
                assert len(queries) == 90
                snap = httpx.get(f"http://{s.http}/api/v1/snapshot", timeout=10).json()
                assert snap["scope"]["store"] == "fleet" and snap["scope"]["health"] == "replica"
            assert httpx.get(f"http://{ref.http}/api/v1/snapshot", timeout=10).json()["scope"]["store"] == "replica"

            # analytics and the daily report over the lake equal the single processor's
            day = YESTERDAY.date().isoformat()
            period = ("--from", YESTERDAY.isoformat(), "--to", (YESTERDAY + timedelta(days=1)).isoformat())
            fleet_a = rag_otel("analytics", "all", "--json", *period, "--config", str(fleet_cfg), "--store", url)
            assert fleet_a.returncode == 0, fleet_a.stderr
            ref.stop()
            ref_a = rag_otel("analytics", "all", "--json", *period, "--config", str(ref_cfg))
            assert ref_a.returncode == 0, ref_a.stderr
            fleet_json, ref_json = json.loads(fleet_a.stdout), json.loads(ref_a.stdout)
            assert fleet_json["performance"]["total"] == 90
            approx_equal(fleet_json, ref_json)
            for cfg, out, extra in ((fleet_cfg, tmp_path / "fr", ("--store", url)), (ref_cfg, tmp_path / "rr", ())):
                p = rag_otel("report", "daily", "--date", day, "--format", "json", "--out", str(out),
                             "--config", str(cfg), *extra)
                assert p.returncode == 0, p.stderr
            fleet_r = json.loads((tmp_path / "fr" / f"daily-{day}.json").read_text())
            ref_r = json.loads((tmp_path / "rr" / f"daily-{day}.json").read_text())
            assert fleet_r["summary"]["queries"] == 90
            approx_equal(without(fleet_r, {"generated_at"}), without(ref_r, {"generated_at"}))

            # the rollups (appended partials from three writers) sum to the single writer's upserted ones
            from rag_otel.analytics import parse_period, run
            from rag_otel.store import Store

            per = parse_period(None, start=YESTERDAY.isoformat(), end=(YESTERDAY + timedelta(days=1)).isoformat())
            with LakeStore.open_lake(url, read_only=True) as lake, \
                    Store.open(tmp_path / "ref-data", read_only=True) as one:
                assert lake.count("rollups") > one.count("rollups")  # partial rows, not upserts
                for name in ("performance", "model_usage_and_cost"):
                    approx_equal(run(name, lake, per, source="rollup"), run(name, one, per, source="rollup"))

            # kill the leader: another replica takes its jobs within the lease bound and runs them
            with LakeStore.open_lake(url) as lake:
                leader = leaders[0]
                leader._proc.kill()  # type: ignore[union-attr]  # no clean shutdown, no lease release
                killed_at = time.monotonic()
                # the report it would have sent next is still due (its run record gone with it)
                lake.sql("DELETE FROM report_runs WHERE kind = 'daily' AND period_start = ?", [YESTERDAY])
            rest = [s for s in replicas if s is not leader]
            wait_for(lambda: any(health(s)["store"]["leader"]["reports"] for s in rest), 10, "a new leader")
            assert time.monotonic() - killed_at < 3 * 1.5 + 1  # lease ttl 3 s, renewed every 1 s
            wait_for(lambda: len(webhook.posts) == 2, 30, "the new leader's report")
            assert sum(health(s)["store"]["leader"]["reports"] for s in rest) == 1
        finally:
            for s in [*replicas, ref]:
                s.stop()
            webhook.close()


def one_span_request() -> bytes:
    """A valid OTLP/HTTP trace request (protobuf) with one root span, as any SDK sends it."""
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

    now = time.time_ns()
    span = Span(trace_id=os.urandom(16), span_id=os.urandom(8), name="rag.query", start_time_unix_nano=now - 10**9,
                end_time_unix_nano=now)
    return ExportTraceServiceRequest(resource_spans=[ResourceSpans(scope_spans=[ScopeSpans(spans=[span])])]
                                     ).SerializeToString()


def post(serve: ServeProcess) -> httpx.Response:
    return httpx.post(f"http://{serve.otlp_http}/v1/traces", content=one_span_request(),
                      headers={"content-type": "application/x-protobuf"}, timeout=10)


def test_catalog_down_keeps_intake_and_export_and_loses_nothing_within_the_bound(pg: Postgres, tmp_path: Path) -> None:
    url = f"ducklake:postgres:{pg.createdb('faults')}"
    with LakeStore.open_lake(url, data_path=str(tmp_path / "lake")) as lake:  # a fresh lake of its own
        assert lake.count("queries") == 0
    with OtlpSink() as sink:
        cfg = write_config(tmp_path / "fleet.yaml", data=tmp_path / "data", sink=sink, webhook=None, store=url,
                           store_data_path=str(tmp_path / "lake"), store_buffer=100)
        serve = ServeProcess(cfg, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--http", "127.0.0.1:0")
        serve.start(timeout=60)
        try:
            exporter = lambda: OTLPSpanExporter(endpoint=f"http://{serve.otlp_http}/v1/traces")  # noqa: E731
            send_traffic(exporter(), 5, seed=1)
            wait_for(lambda: health(serve)["store"]["written"] == 5, 30, "the first writes")
            pg.stop()
            try:
                # 85 queries in one request while the catalog is away: accepted, exported, held
                send_traffic(exporter(), 85, seed=2, batch=True)
                wait_for(lambda: health(serve)["store"]["buffered"] == 85, 30, "85 buffered writes")
                h = health(serve)["store"]
                assert h["status"] == "unreachable" and h["written"] == 5 and h["last_error"], h
                assert len([s for s in sink.spans() if s.name == "rag.query"]) >= 90  # exported downstream
                metrics = httpx.get(f"http://{serve.http}/metrics", timeout=5).text
                assert re.search(r"^rag_processor_store_up(\{[^}]*\})? 0\.0$", metrics, re.M), metrics[-2000:]
                assert re.search(r"^rag_processor_store_buffered(_items)?(\{[^}]*\})? 85\.0$", metrics, re.M)
                # past 80% of the bound, intake answers retry-later instead of accepting what it could lose
                refused = post(serve)
                assert refused.status_code == 503 and refused.headers.get("retry-after"), refused.text
                time.sleep(2)
            finally:
                pg.start()
            wait_for(lambda: health(serve)["store"]["status"] == "ok" and health(serve)["store"]["buffered"] == 0,
                     60, "the buffered writes going in")
            assert health(serve)["store"]["written"] == 90 and health(serve)["store"]["failed_batches"] == 0
            assert post(serve).status_code == 200  # intake open again
        finally:
            serve.stop()
    with LakeStore.open_lake(url, read_only=True) as lake:
        assert lake.count("queries") == 90  # every query accepted, none twice


def test_the_lake_writer_gathers_bigger_commits_and_still_writes_within_its_flush_interval(
        pg: Postgres, tmp_path: Path) -> None:
    """A lake commit is a catalog transaction every writer queues behind: the writer gathers up to
    1000 records per commit where the file's writer commits every 100 (bench/README.md)."""
    from rag_otel.store import Store, StoreWriter
    from tests.support.store_data import generate

    recs = generate(seed=4, days=1, per_day=450).records
    with LakeStore.open_lake(f"ducklake:postgres:{pg.createdb('batches')}", data_path=str(tmp_path / "lake")) as lake, \
            Store.open(tmp_path / "file") as file:
        for name, store in (("lake", lake), ("file", file)):
            w = StoreWriter(store, retention_every=None).start()  # the processor's defaults
            assert w.batch_size == {"lake": 1000, "file": 100}[name]
            for r in recs:  # a burst: the lake writer takes it in one commit (two if a flush_interval ends in it)
                w.on_record(r)
            assert w.flush(60)
            assert w.stats.written == 450 and store.count("queries") == 450  # each once
            if name == "lake":
                assert w.stats.flushes <= 2
            t0 = time.monotonic()
            w.on_record(generate(seed=5, days=1, per_day=1).records[0])  # one record alone waits at most
            assert w.flush(60) and time.monotonic() - t0 < w.flush_interval + 5  # flush_interval + a commit
            assert store.count("queries") == 451
            w.stop()
