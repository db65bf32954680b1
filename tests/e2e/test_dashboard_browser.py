"""The dashboard in headless Chromium (Debian's ``chromium``, driven by Playwright) against a real
processor fed by the real OTel SDK exporter over OTLP/HTTP.

Screenshots land in ``test-artifacts/`` (git-ignored) for a human to look at.
"""

from __future__ import annotations

import json
import re
import shutil
import time
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import SpanKind
from playwright.sync_api import Browser, Page, expect, sync_playwright

from rag_otel.config import AlertRule, ModelObservation, Notifier
from rag_otel.processor.service import ProcessorService
from rag_otel.records import QueryRecord, SystemSample

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
JAEGER = "http://127.0.0.1:16686"
QUESTIONS = ["How do I reset my password?", "What is a vector database?", "Compare faiss and chroma"]


def send_queries(svc: ProcessorService, n: int, start: int = 0, text: bool = True) -> None:
    """RAG queries as the SDK shapes them (root + retrieval + chat), exported by the real OTLP/HTTP exporter;
    ``text=False``: as an app with ``content.capture: none`` sends them (ids and scores only)."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://{svc.receiver.http_address}/v1/traces"), schedule_delay_millis=50))
    tracer = provider.get_tracer("dashboard-test")
    for i in range(start, start + n):
        q = QUESTIONS[i % len(QUESTIONS)]
        content = {"rag.query.text": q, "rag.answer.text": f"Answer to: {q}", "rag.content.capture": "full"}
        doc = {"id": "d1", "score": 0.9, "content": q}
        if not text:
            content, doc = {"rag.content.capture": "none"}, {"id": "d1", "score": 0.9}
        with tracer.start_as_current_span("rag.query", attributes={
            **content, "user.id": f"user-{i % 2}", "session.id": f"s-{i % 2}",
        }):
            with tracer.start_as_current_span("retrieval faiss", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "retrieval", "gen_ai.data_source.id": "faiss",
                "gen_ai.retrieval.documents": json.dumps([doc]),
            }):
                pass
            with tracer.start_as_current_span("chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini", "gen_ai.response.model": "gpt-4o-mini",
                "gen_ai.usage.input_tokens": 300, "gen_ai.usage.output_tokens": 40,
            }):
                pass
    assert provider.force_flush(10_000)
    provider.shutdown()


def send_index_build_and_unmetered_query(svc: ProcessorService) -> None:
    """An index build (embeddings only: ingestion, not a query) and a query whose chat call reported no
    usage (its cost is a lower bound), through the real OTLP/HTTP exporter."""
    provider = TracerProvider(resource=Resource.create({"service.name": "rag-app"}))
    provider.add_span_processor(BatchSpanProcessor(
        OTLPSpanExporter(endpoint=f"http://{svc.receiver.http_address}/v1/traces"), schedule_delay_millis=50))
    tracer = provider.get_tracer("dashboard-test")
    with tracer.start_as_current_span("build index"), tracer.start_as_current_span(
            "embeddings text-embedding-3-small", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "embeddings", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "text-embedding-3-small", "gen_ai.usage.input_tokens": 1200}):
        pass
    with tracer.start_as_current_span("rag.query", attributes={
            "rag.query.text": QUESTIONS[0], "rag.answer.text": "Use the reset link."}), tracer.start_as_current_span(
            "chat gpt-4o-mini", kind=SpanKind.CLIENT, attributes={
                "gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4o-mini"}):
        pass
    assert provider.force_flush(10_000)
    provider.shutdown()


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessorService]:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path_factory.mktemp("dash") / "data")
    p.trace_wait = 0.1
    p.shutdown_grace = 3.0
    cfg.content.capture = "full"
    cfg.dashboards.real_time.update_interval = 0.3
    cfg.dashboards.real_time.max_subscribers = 2
    cfg.dashboards.jaeger_ui_url = JAEGER
    s = ProcessorService(cfg).start()
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)  # Playwright gives it a temp profile dir
        try:
            yield b
        finally:
            b.close()


def open_dashboard(browser: Browser, svc: ProcessorService) -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://{svc.http_address}/")
    return page


def test_panels_fill_and_change_live(browser: Browser, svc: ProcessorService) -> None:
    send_queries(svc, 3)
    page = open_dashboard(browser, svc)
    try:
        expect(page.locator("#conn")).to_contain_text("live")
        expect(page.locator("#perf-queries")).to_have_text("3", timeout=15_000)
        expect(page.locator("#health-status")).to_have_text("ok")
        expect(page.locator("#scope")).to_have_text("this processor")  # a single node: its own numbers
        expect(page.locator("#perf-success")).to_have_text("100.0%")
        expect(page.locator("#usage-people")).to_have_text("2 / 2")
        expect(page.locator("#usage-tokens")).to_have_text("900 / 120")
        expect(page.locator("#quality-overall")).not_to_have_text("–")  # scored by the processor's lexical scorer
        expect(page.locator("#quality-axes .bar")).not_to_have_count(0)
        expect(page.locator("#usage-models")).to_contain_text("gpt-4o-mini")
        rows = page.locator("#recent-rows tr")
        expect(rows).to_have_count(3)
        expect(rows.first).to_contain_text(QUESTIONS[2])
        href = rows.first.locator("a", has_text="trace").get_attribute("href")
        assert rows.first.locator("a.qlink").get_attribute("href") == "#/query/" + href.rsplit("/", 1)[1]
        assert href is not None and href.startswith(f"{JAEGER}/trace/") and len(href.rsplit("/", 1)[1]) == 32
        ARTIFACTS.mkdir(exist_ok=True)
        send_queries(svc, 2, start=3)  # new traffic while the page is open: no reload
        expect(page.locator("#perf-queries")).to_have_text("5", timeout=15_000)
        expect(rows).to_have_count(5)
        page.screenshot(path=str(ARTIFACTS / "dashboard-live.png"), full_page=True)
    finally:
        page.close()


def test_an_older_history_load_answering_late_does_not_overwrite_a_newer_one(browser: Browser,
                                                                             svc: ProcessorService) -> None:
    """Switching ranges quickly: the 7-day load the tab starts is held back (route interception) until the
    1-hour and an empty custom range have been shown; when it finally answers, the view keeps the custom range."""
    send_queries(svc, 1, start=30)
    page = open_dashboard(browser, svc)
    held: list[Any] = []
    page.route(re.compile(r".*/api/v1/analytics/performance\?period=7d$"), lambda route: held.append(route))
    try:
        page.click("button.tab[data-view=history]")
        page.click("#range button[data-period='1h']")
        expect(page.locator("#range-label")).to_contain_text("(raw)")
        hours_ago = lambda h: (datetime.now() - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
        page.fill("#range-from", hours_ago(3))
        page.fill("#range-to", hours_ago(2))
        page.click("#range button[type=submit]")
        expect(page.locator("#hist-perf dd").first).to_have_text("0")
        assert held, "the 7-day load never asked for performance"
        for route in held:
            route.continue_()
        page.wait_for_load_state("networkidle")
        page.wait_for_timeout(300)  # its render would come right after its answer
        expect(page.locator("#hist-perf dd").first).to_have_text("0")
        expect(page.locator("#hist-timeline")).to_contain_text("no data in this range")
    finally:
        page.close()


def test_history_view_reads_the_analytics_endpoints(browser: Browser, svc: ProcessorService) -> None:
    send_queries(svc, 1, start=10)
    send_queries(svc, 1, start=11, text=False)  # an app with capture off: counted as unscored, with the fix
    send_index_build_and_unmetered_query(svc)
    hour_start = time.time() // 3600 * 3600  # all three samples in one UTC hour, whatever the clock says
    sample_hour = datetime.fromtimestamp(hour_start, timezone.utc).hour
    svc.store.write_system([SystemSample(time=hour_start + i / 1000, service="rag-app", host="host-a", cpu_percent=cpu,
                                         memory_percent=50.0, disk_percent=30.0, health_score=70.0)
                            for i, cpu in enumerate((20.0, 50.0, 80.0))])
    page = open_dashboard(browser, svc)
    try:
        expect(page.locator("#perf-queries")).not_to_have_text("–", timeout=15_000)
        page.click("button.tab[data-view=history]")
        expect(page.locator("#hist-perf")).to_contain_text("Queries")
        page.click("#range button[data-period='1h']")
        expect(page.locator("#range-label")).to_contain_text("(raw)")
        total = svc.store.sql("SELECT count(*) FROM queries")[0][0]
        expect(page.locator("#hist-perf dd").first).to_have_text(str(total))
        unscored = svc.store.sql("SELECT count(*) FROM queries WHERE q_status = 'no_content'")[0][0]
        assert unscored >= 1
        expect(page.locator("#hist-quality")).to_contain_text(f"Unscored: no content{unscored}: the app sent no")
        expect(page.locator("#hist-quality")).to_contain_text("content.capture: scoring_only")
        expect(page.locator("#hist-timeline path")).to_have_count(2)
        expect(page.locator("#hist-cost-chart rect")).to_have_count(1)
        incomplete = svc.store.sql("SELECT count(*) FROM queries WHERE cost_complete = false")[0][0]
        builds, tokens = svc.store.sql("SELECT count(*), sum(input_tokens) FROM ingestion")[0]
        assert incomplete >= 1 and builds >= 1
        expect(page.locator("#hist-cost")).to_contain_text(f"Cost incomplete{incomplete} queries")
        expect(page.locator("#hist-cost")).to_contain_text(f"Ingestion{builds} traces")
        expect(page.locator("#hist-cost")).to_contain_text(f"{tokens:,} tokens")
        hours_ago = lambda h: (datetime.now() - timedelta(hours=h)).strftime("%Y-%m-%dT%H:%M")  # noqa: E731
        page.fill("#range-from", hours_ago(3))  # the inputs take local time, like the browser's clock
        page.fill("#range-to", hours_ago(2))
        page.click("#range button[type=submit]")
        expect(page.locator("#hist-perf dd").first).to_have_text("0")
        expect(page.locator("#hist-timeline")).to_contain_text("no data in this range")
        page.click("#range button[data-period='24h']")
        expect(page.locator("#hist-perf dd").first).to_have_text(str(total))
        # usage: the heatmap cell of this hour holds every query; categories, topics and engagement are filled
        cells = svc.store.sql("SELECT isodow(ts) - 1, hour(ts), count(*) FROM queries GROUP BY 1, 2")
        for weekday, hour, n in cells:  # Monday first, UTC hours
            expect(page.locator("#hist-heatmap rect").nth(weekday * 24 + hour)).to_have_attribute("data-count", str(n))
        expect(page.locator("#hist-heatmap rect[data-count='0']")).to_have_count(7 * 24 - len(cells))
        expect(page.locator("#hist-categories .bar").first).to_be_visible()
        expect(page.locator("#hist-topics tr").first).not_to_contain_text("no topics")
        expect(page.locator("#hist-engagement")).to_contain_text("Sessions")
        # per-model comparison: the one model with all queries
        expect(page.locator("#hist-models tr")).to_have_count(1)
        expect(page.locator("#hist-models tr td").nth(0)).to_have_text("gpt-4o-mini")
        expect(page.locator("#hist-models tr td").nth(1)).to_have_text(str(total))
        # system usage from the stored samples: percentiles, the peak hour, the bottleneck verdicts
        expect(page.locator("#hist-system-note")).to_contain_text("3 samples from host-a")
        expect(page.locator("#hist-resources tr", has_text="CPU %")).to_contain_text("80.00")
        expect(page.locator("#hist-peaks tr").first).to_contain_text(f"{sample_hour}:00 UTC")
        expect(page.locator("#hist-bottlenecks tr").first).to_contain_text("no")
        page.screenshot(path=str(ARTIFACTS / "dashboard-history.png"), full_page=True)
    finally:
        page.close()


def test_one_viewer_too_many_sees_the_refusal_then_gets_in_by_itself(browser: Browser, svc: ProcessorService) -> None:
    first, second = open_dashboard(browser, svc), open_dashboard(browser, svc)
    third = None
    try:
        for p in (first, second):
            expect(p.locator("#conn")).to_contain_text("live")
        third = open_dashboard(browser, svc)
        expect(third.locator("#conn")).to_contain_text("refused: dashboard full", timeout=10_000)
        third.screenshot(path=str(ARTIFACTS / "dashboard-refused.png"))
        first.close()  # a slot frees up; the refused page retries with backoff and gets in without a reload
        expect(third.locator("#conn")).to_contain_text("live", timeout=15_000)
        expect(third.locator("#perf-queries")).not_to_have_text("–")
    finally:
        for p in (first, second, third):
            if p is not None and not p.is_closed():
                p.close()


def test_alerts_can_be_acknowledged_and_silenced_from_the_page_with_the_token(tmp_path: Path,
                                                                              browser: Browser) -> None:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.shutdown_grace = 3.0
    p.api_token_env = "RAG_OTEL_TEST_DASH_TOKEN"
    cfg.dashboards.real_time.update_interval = 0.3
    cfg.alerting.notifiers = [Notifier(type="log")]
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly_queries", metric="cost_per_query", operator="gt", threshold=0.0, window="5m")]
    svc = ProcessorService(cfg, env={"RAG_OTEL_TEST_DASH_TOKEN": "s3cret"}).start()
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    try:
        now = time.time()
        svc.alerts.observe(QueryRecord(trace_id="a" * 32, root_span_id="b" * 16, start_time=now - 1, end_time=now,
                                       cost_usd=0.02, models=["gpt-4o"]))
        svc.alerts.evaluate(now)
        page.goto(f"http://{svc.http_address}/#token=s3cret")  # the API refuses calls without it
        item = page.locator("#alerts-list li", has_text="costly_queries")
        expect(item).to_contain_text("FIRING")
        page.get_by_role("button", name="Acknowledge costly_queries").click()
        expect(page.locator("#alerts-msg")).to_have_text("costly_queries: acknowledged")
        expect(item).to_contain_text("(acknowledged)")
        expect(page.get_by_role("button", name="Acknowledge costly_queries")).to_be_disabled()
        fp = item.get_attribute("data-fingerprint")
        assert next(s for s in svc.alerts.statuses() if s.fingerprint == fp).acknowledged
        page.get_by_label("Silence costly_queries for").select_option("4h")
        page.get_by_role("button", name="Silence costly_queries").click()
        expect(page.locator("#alerts-msg")).to_have_text("costly_queries: silenced for 4h")
        expect(item).to_contain_text("silenced until")
        until = next(s for s in svc.alerts.statuses() if s.fingerprint == fp).silenced_until
        assert until is not None and abs(until - (time.time() + 4 * 3600)) < 60
        page.locator("#panel-alerts").screenshot(path=str(ARTIFACTS / "dashboard-alerts.png"))
        page.get_by_label("Silence costly_queries for").select_option("0")
        page.get_by_role("button", name="Silence costly_queries").click()
        expect(page.locator("#alerts-msg")).to_have_text("costly_queries: silence lifted")
        expect(item).not_to_contain_text("silenced until")
        assert next(s for s in svc.alerts.statuses() if s.fingerprint == fp).silenced_until is None
    finally:
        page.close()
        svc.stop()
