"""Scheduled reports delivered to real servers on 127.0.0.1 free ports: an SMTP server (aiosmtpd)
receives the email with its charts inline (every ``cid:`` in the HTML resolves to an image part),
a small HTTP server receives the webhook; a dead channel does not stop the other."""

from __future__ import annotations

import json
import re
import socket
import threading
from collections.abc import Iterator
from datetime import datetime, timezone
from email import message_from_bytes, policy
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from rag_otel.config import ScheduledReport, SmtpSettings
from rag_otel.reports import ReportScheduler
from rag_otel.store import Store
from tests.support.store_data import fill, generate, text_config

PNG = b"\x89PNG\r\n\x1a\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ts(text: str) -> float:
    return datetime.fromisoformat(text).replace(tzinfo=timezone.utc).timestamp()


class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []
        self.event = threading.Event()

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.original_content))
        self.event.set()
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox, port = Inbox(), free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


@pytest.fixture
def webhook() -> Iterator[tuple[list[dict], str]]:
    received: list[dict] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["content-length"]))
            received.append({"path": self.path, "type": self.headers["content-type"], "json": json.loads(body)})
            self.send_response(204)
            self.end_headers()

        def log_message(self, *_a) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield received, f"http://127.0.0.1:{server.server_address[1]}/hooks/reports"
    finally:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def dataset():
    return generate(seed=5, days=3, per_day=60, end=datetime(2026, 11, 19, tzinfo=timezone.utc))


def scheduler(tmp_path: Path, dataset, smtp_port: int, hook_url: str) -> tuple[Store, ReportScheduler]:
    cfg = text_config()
    cfg.reporting.formats = ["html", "json"]
    cfg.reporting.smtp = SmtpSettings(host="127.0.0.1", port=smtp_port, **{"from": "reports@rag.test"})
    cfg.reporting.daily_report = ScheduledReport(time="08:00", recipients=["team@rag.test", "lead@rag.test"])
    cfg.reporting.weekly_report = ScheduledReport(enabled=False)
    cfg.reporting.webhook_url = hook_url
    store = Store.open(tmp_path / "data", config=cfg)
    fill(store, dataset)
    store.write_report_run("daily", None, None, status="ok", outputs={"trigger": "schedule"},  # not a first start
                           ran_at=datetime(2026, 11, 1))
    return store, ReportScheduler(store, cfg, out=tmp_path / "reports")


def parts(msg: EmailMessage) -> list[EmailMessage]:
    return list(msg.walk())


def test_scheduled_report_arrives_by_email_with_inline_charts_and_by_webhook(smtp, webhook, tmp_path, dataset):
    inbox, port = smtp
    hooks, url = webhook
    store, sched = scheduler(tmp_path, dataset, port, url)
    try:
        runs = sched.tick(ts("2026-11-18T08:00:05"))
    finally:
        store.close()
    assert [(r["name"], r["status"], r["deliveries"]) for r in runs] == [
        ("daily-2026-11-17", "ok", {"email": "ok", "webhook": "ok"})]
    summary = runs[0]["summary"]

    assert len(inbox.messages) == 1
    sender, rcpts, raw = inbox.messages[0]
    assert (sender, sorted(rcpts)) == ("reports@rag.test", ["lead@rag.test", "team@rag.test"])
    msg = message_from_bytes(raw, policy=policy.default)
    assert msg["Subject"] == "RAG daily report: 2026-11-17 (UTC)"
    assert msg.get_content_type() == "multipart/mixed"
    related = next(p for p in parts(msg) if p.get_content_type() == "multipart/related")
    html = related.get_payload()[0]
    assert html.get_content_type() == "text/html"
    text = html.get_content()
    cids = re.findall(r'src="cid:([^"]+)"', text)
    assert len(cids) == 4 and "data:image" not in text
    images = {p["Content-ID"].strip().strip("<>"): p for p in related.get_payload()[1:]}
    assert set(cids) == set(images)  # every reference resolves to an image inside the related part
    for cid in cids:
        assert images[cid].get_content_type() == "image/png"
        assert images[cid].get_content().startswith(PNG)
    plain = next(p for p in parts(msg) if p.get_content_type() == "text/plain")
    assert f"| queries | {summary['queries']} |" in plain.get_content() and "![" not in plain.get_content()
    attachments = {p.get_filename(): p for p in msg.iter_attachments()}
    assert set(attachments) == {"daily-2026-11-17.json", "daily-2026-11-17.html"}
    attached = json.loads(attachments["daily-2026-11-17.json"].get_content())
    assert attached["summary"] == summary and summary["queries"] > 0

    assert len(hooks) == 1 and hooks[0]["path"] == "/hooks/reports" and hooks[0]["type"] == "application/json"
    body = hooks[0]["json"]
    assert body["name"] == "daily-2026-11-17" and body["summary"] == summary
    assert body["period"]["start"] == "2026-11-17T00:00:00Z"
    assert sorted(Path(f).name for f in body["files"]) == ["daily-2026-11-17.html", "daily-2026-11-17.json"]
    assert all(Path(f).is_file() for f in body["files"])


def test_a_dead_webhook_does_not_stop_the_email_and_the_run_says_partial(smtp, tmp_path, dataset):
    inbox, port = smtp
    dead = f"http://127.0.0.1:{free_port()}/closed"  # nothing listens there
    store, sched = scheduler(tmp_path, dataset, port, dead)
    try:
        runs = sched.tick(ts("2026-11-18T09:00"))
        row = store.report_runs(1, kind="daily")[0]
    finally:
        store.close()
    assert runs[0]["status"] == "partial"
    assert runs[0]["deliveries"]["email"] == "ok" and runs[0]["deliveries"]["webhook"].startswith("error:")
    assert len(inbox.messages) == 1
    assert row["status"] == "partial" and row["error"].startswith("webhook: error:")
    assert (tmp_path / "reports" / "daily-2026-11-17.html").exists()  # the folder copy is there regardless
