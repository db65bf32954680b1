"""Two questions of one trace (a LangServe /batch call) in the dashboard, in headless Chromium: each opens
in the query view by its own query id, from the recent list and pasted into the header box, and links the
one trace in Jaeger."""

from __future__ import annotations

import time

from playwright.sync_api import Browser, expect

from rag_otel.processor.service import ProcessorService
from rag_otel.records import QueryRecord, SpanSummary
from tests.e2e.test_dashboard_query_view import JAEGER, browser, page_of, svc  # noqa: F401 (fixtures)

BATCH = "5c3e2a0f9d8b47a6b1c2d3e4f5a6b7c8"
QUESTIONS = {f"{6:016x}": "How do I descale my kettle?", f"{7:016x}": "Is limescale damage covered?"}


def write_batch(service: ProcessorService) -> list[str]:
    now = time.time()
    recs = [QueryRecord(BATCH, sid, now - 3 + n, now - 2 + n, service="batch-e2e", query_text=q,
                        answer_text="…", models=["gpt-4o-mini"], cost_usd=0.0001, query_id=f"{BATCH}-{sid}",
                        spans=[SpanSummary(sid, None, "chat gpt-4o-mini", "llm", now - 3 + n, now - 2 + n,
                                           model="gpt-4o-mini", input_tokens=100, output_tokens=10)])
            for n, (sid, q) in enumerate(QUESTIONS.items())]
    service.store.write_records(recs)
    return [r.query_id for r in recs]


def test_each_question_of_a_batch_opens_by_its_query_id(browser: Browser, svc: ProcessorService) -> None:  # noqa: F811
    ids = write_batch(svc)
    page = page_of(browser, svc)
    try:
        for qid, question in zip(ids, QUESTIONS.values(), strict=True):
            link = page.locator(f"#recent-rows a.qlink[data-trace='{qid}']")
            expect(link).to_be_visible(timeout=15_000)
            link.click()
            expect(page.locator("#query-id")).to_have_text(qid)
            expect(page.locator("#query-text")).to_have_text(question)
            expect(page.locator("#waterfall .wf-row")).to_have_count(1)
            expect(page.locator("#query-facts a", has_text="open in Jaeger")).to_have_attribute(
                "href", f"{JAEGER}/trace/{BATCH}")
            page.click("button.tab[data-view=live]")
        page.fill("#open-trace-id", ids[1].upper())  # pasted from a log line, any case
        page.click("#open-trace button")
        expect(page.locator("#query-text")).to_have_text(QUESTIONS[f"{7:016x}"])
    finally:
        page.close()
