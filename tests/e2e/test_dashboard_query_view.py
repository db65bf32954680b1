"""What a person looks for in the dashboard, in headless Chromium (Debian's ``chromium`` via Playwright):
the query view (waterfall, model calls, sources, explanations) opened from every list that shows queries
and by trace id; History's timeline with one point per bucket with data at 1 h and 7 d; the HTML report's
links into the query view. The processor is real and fed by the real OTel SDK over OTLP/HTTP; older
history is written through the store's own API (a week of generated traffic ending now).

Screenshots land in ``test-artifacts/`` for a human to look at.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timezone

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from rag_otel.config import AlertRule, ModelObservation, Notifier
from rag_otel.processor.service import ProcessorService
from tests.e2e.test_dashboard_browser import ARTIFACTS, CHROMIUM, FLAGS
from tests.integration.test_query_view_api import DOCS, QUESTION, send
from tests.support import store_data

JAEGER = "http://127.0.0.1:16686"
EPOCH = datetime(2000, 1, 3, tzinfo=timezone.utc).timestamp()  # where the analytics' buckets start


@pytest.fixture(scope="module")
def svc(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ProcessorService]:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path_factory.mktemp("qv-dash") / "data")
    p.trace_wait = 0.1
    p.shutdown_grace = 3.0
    cfg.content.capture = "full"
    cfg.reporting.out_dir = str(tmp_path_factory.mktemp("qv-reports"))
    cfg.dashboards.real_time.update_interval = 0.3
    cfg.dashboards.jaeger_ui_url = JAEGER
    cfg.alerting.notifiers = [Notifier(type="log")]
    cfg.performance_monitoring.alert_rules = [
        AlertRule(name="costly_queries", metric="cost_per_query", operator="gt", threshold=0.0, window="5m")]
    s = ProcessorService(cfg).start()
    # a week of traffic before today's (generated, spread over time), written as the writer writes
    week = store_data.generate(seed=5, days=6, per_day=40, end=datetime.now(timezone.utc), capture_text=1.0)
    for i in range(0, len(week.records), 200):
        s.store.write_records(week.records[i:i + 200])
    try:
        yield s
    finally:
        s.stop()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture(scope="module")
def trace_id(svc: ProcessorService) -> str:
    tid = send(svc, "full")
    deadline = time.monotonic() + 20
    while not svc.store.sql("SELECT 1 FROM query_details WHERE trace_id = ?", [tid]):
        assert time.monotonic() < deadline, "the query never reached the store"
        time.sleep(0.1)
    return tid


def page_of(browser: Browser, svc: ProcessorService, path: str = "/") -> Page:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(f"http://{svc.http_address}{path}")
    return page


def check_query_view(page: Page, trace_id: str) -> None:
    """What a person opening a query looks for: where the time went, what each call cost, why it scored so."""
    expect(page.locator("#view-query")).to_be_visible()
    expect(page.locator("#query-id")).to_have_text(trace_id)
    expect(page.locator("#query-text")).to_have_text(QUESTION)
    rows = page.locator("#waterfall .wf-row")
    expect(rows).to_have_count(4)
    expect(rows.nth(0)).to_contain_text("rag.query")
    expect(page.locator("#waterfall .wf-row[data-role=llm]")).to_contain_text("chat gpt-4o-mini")
    expect(page.locator("#waterfall .wf-row[data-role=retrieval]")).to_contain_text("retrieval kb")
    # the bars sit where their spans ran: the chat call starts after retrieval, inside the root
    lefts = [float(rows.nth(i).locator(".wf-bar").evaluate("e => parseFloat(e.style.left)")) for i in range(4)]
    assert lefts[0] == 0 and lefts[1] <= lefts[2] <= lefts[3] < 100
    chat = page.locator("#query-calls tr", has_text="gpt-4o-mini")
    expect(chat).to_contain_text("1,000")
    expect(chat).to_contain_text("200")
    expect(chat).to_contain_text("$0.00027")  # 1000 x $0.15/M + 200 x $0.60/M
    expect(page.locator("#query-sources tr").first).to_contain_text(DOCS[0]["id"])
    expect(page.locator("#query-sources tr").first).to_contain_text("0.91")
    axes = page.locator("#query-axes tr[data-axis]")
    expect(axes).not_to_have_count(0)
    for i in range(axes.count()):  # every axis says why, in words
        assert len(axes.nth(i).locator("td.why").first.inner_text().strip()) > 10
    expect(page.locator("#query-facts a", has_text="open in Jaeger")).to_have_attribute(
        "href", f"{JAEGER}/trace/{trace_id}")


def test_the_query_view_opens_from_recent_queries_and_by_trace_id(browser: Browser, svc: ProcessorService,
                                                                   trace_id: str) -> None:
    page = page_of(browser, svc)
    try:
        link = page.locator(f"#recent-rows a.qlink[data-trace='{trace_id}']")
        expect(link).to_be_visible(timeout=15_000)
        link.click()
        check_query_view(page, trace_id)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "dashboard-query.png"), full_page=True)
        page.click("button.tab[data-view=live]")
        expect(page.locator("#view-live")).to_be_visible()
        page.fill("#open-trace-id", trace_id.upper())  # pasted from a log line, any case
        page.click("#open-trace button")
        check_query_view(page, trace_id)
        page.fill("#open-trace-id", "ab" * 16)
        page.click("#open-trace button")
        expect(page.locator("#query-error")).to_contain_text("no query with trace id")
    finally:
        page.close()


def test_the_query_view_opens_from_worst_queries_and_the_alert(browser: Browser, svc: ProcessorService,
                                                                trace_id: str) -> None:
    svc.pipeline.evaluate_alerts()  # costly_queries fires on the priced query
    tripped = send(svc, "full")  # ran while it fired
    page = page_of(browser, svc, "/#/history")
    try:
        expect(page.locator("#view-history")).to_be_visible()
        worst = page.locator("#hist-worst a.qlink").first
        expect(worst).to_be_visible(timeout=15_000)
        tid = worst.get_attribute("data-trace")
        worst.click()
        expect(page.locator("#query-id")).to_have_text(tid or "")
        q_overall = svc.store.sql("SELECT q_overall FROM queries WHERE trace_id = ?", [tid])[0][0]
        expect(page.locator("#query-facts")).to_contain_text(f"{q_overall:.2f}")
        # a query of the generated week has no spans: the view says so rather than drawing an empty chart;
        # a query that came through the serve shows its waterfall (which one scores worst depends on the scorer)
        kept = svc.store.sql("SELECT coalesce(json_array_length(spans), 0) FROM query_details WHERE trace_id = ?",
                             [tid])
        n_spans = kept[0][0] if kept else 0
        if n_spans:
            expect(page.locator("#waterfall-note")).to_contain_text(f"{n_spans} spans")
        else:
            expect(page.locator("#waterfall-note")).to_have_text("no spans kept")
        page.click("button.tab[data-view=live]")
        alert_link = page.locator("#alerts-list li", has_text="costly_queries").locator("a.qlink")
        expect(alert_link).to_have_attribute("data-trace", tripped, timeout=20_000)
        alert_link.click()
        expect(page.locator("#query-alerts")).to_contain_text("costly_queries")
        expect(page.locator("#query-alerts")).to_contain_text("firing")
    finally:
        page.close()


def points_per_bucket(api: httpx.Client, period: str) -> tuple[int, int, list[dict]]:
    perf = api.get("/api/v1/analytics/performance", params={"period": period}).json()
    return perf["bucket_s"], perf["total"], perf["timeline"]


@pytest.mark.parametrize("period", ["1h", "7d"])
def test_history_timeline_has_one_point_per_bucket_with_data(browser: Browser, svc: ProcessorService,
                                                             trace_id: str, period: str) -> None:
    with httpx.Client(base_url=f"http://{svc.http_address}", timeout=20) as api:
        width, total, timeline = points_per_bucket(api, period)
    since = time.time() - (3600 if period == "1h" else 7 * 86400)
    starts = [r[0].replace(tzinfo=timezone.utc).timestamp() for r in svc.store.sql(
        "SELECT ts FROM queries WHERE ts >= to_timestamp(?)::TIMESTAMP", [since])]
    expected = {int((t - EPOCH) // width) for t in starts}  # buckets with data, counted here independently
    if period == "1h":
        assert width == 60  # minutes for an hour
    else:
        assert len(expected) > 10 and width <= 6 * 3600  # a week of traffic is a line, never a dot
    assert len(timeline) == len(expected) and sum(t["count"] for t in timeline) == total == len(starts)
    page = page_of(browser, svc, "/#/history")
    try:
        page.click(f"#range button[data-period='{period}']")
        expect(page.locator("#hist-perf dd").first).to_have_text(f"{total:,}")
        expect(page.locator("#hist-timeline circle.pt-count")).to_have_count(len(expected))
        expect(page.locator("#hist-timeline .bucket-note")).to_contain_text(f"{len(expected)} buckets of")
        page.screenshot(path=str(ARTIFACTS / f"dashboard-history-{period}.png"), full_page=True)
    finally:
        page.close()


def test_the_html_report_links_its_worst_queries_into_the_query_view(browser: Browser, svc: ProcessorService,
                                                                      trace_id: str) -> None:
    with httpx.Client(base_url=f"http://{svc.http_address}", timeout=60) as api:
        today = datetime.now(timezone.utc).date().isoformat()
        run = api.post("/api/v1/reports/run", json={"kind": "daily", "date": today, "formats": ["html"]}).json()
    html_file = next(f for f in run["files"] if f.endswith(".html"))
    page = browser.new_page(viewport={"width": 1200, "height": 1000})
    page.goto(f"file://{html_file}")  # the written file, opened as a reader opens it (one self-contained file)
    try:
        expect(page.locator("h1")).to_contain_text("aily")
        expect(page.locator("#chart-performance")).to_be_visible()
        page.screenshot(path=str(ARTIFACTS / "report-daily.png"), full_page=True)
        first = page.locator("a[href*='#/query/']").first
        expect(first).to_be_visible()
        href = first.get_attribute("href") or ""
        assert href.startswith(f"http://{svc.http_address}/#/query/")
        first.click()
        tid = href.rsplit("/", 1)[1]
        expect(page.locator("#query-id")).to_have_text(tid)
        expect(page.locator("#query-facts")).to_contain_text("Latency")
    finally:
        page.close()


def test_the_live_health_panel_states_its_sample_and_formula(browser: Browser, svc: ProcessorService,
                                                             trace_id: str) -> None:
    from rag_otel.health import health_score
    from rag_otel.records import SystemSample

    svc.store.write_system([SystemSample(time.time(), "rag-app", host="host-a", cpu_percent=99.0, memory_percent=9.0,
                                         disk_percent=34.0, health_score=health_score(99.0, 9.0, 34.0))])
    page = page_of(browser, svc)
    try:
        expect(page.locator("#health-system")).to_have_text("99% / 9% / 34%", timeout=15_000)
        expect(page.locator("#health-score")).to_have_text("57")  # 100 - (0.3*99 + 0.4*9 + 0.3*34) = 56.5
        expect(page.locator("#health-note")).to_contain_text("latest sample from host-a")
        expect(page.locator("#health-note")).to_contain_text("100 − (0.3 CPU% + 0.4 memory% + 0.3 disk%)")
        page.screenshot(path=str(ARTIFACTS / "dashboard-live-health.png"), full_page=True)
    finally:
        page.close()
