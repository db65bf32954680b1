"""Notifiers against real servers: Alertmanager (Debian package), an SMTP server (aiosmtpd) and a
small HTTP webhook receiver, all on 127.0.0.1 free ports, started and stopped here."""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from aiosmtpd.controller import Controller

from rag_otel.alerts.engine import AlertEngine
from rag_otel.alerts.notifiers import (
    AlertmanagerNotifier,
    Dispatcher,
    EmailNotifier,
    WebhookNotifier,
    build_notifiers,
)
from rag_otel.config import Alerting, AlertRule
from rag_otel.records import AlertEvent, QueryRecord

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout: float = 10.0, step: float = 0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        got = cond()
        if got:
            return got
        time.sleep(step)
    raise AssertionError("condition not met in time")


def slow_queries(engine: AlertEngine, t: float, n: int = 3) -> None:
    for i in range(n):
        engine.observe(QueryRecord(trace_id="1" * 32, root_span_id="2" * 16, start_time=t + i - 8, end_time=t + i,
                                   service="api", models=["gpt-4o"]))


def latency_rule(**kw: object) -> AlertRule:
    return AlertRule.model_validate({"name": "high_latency", "metric": "average_response_time", "operator": "gt",
                                     "threshold": 5.0, "severity": "critical", "window": "1m",
                                     "filters": {"service": "api"}, "labels": {"team": "search"}, **kw})


# --- webhook receiver ------------------------------------------------------------------------
class Receiver:
    """A real HTTP server that records JSON bodies; ``fail`` answers 500 that many times first."""

    def __init__(self, fail: int = 0) -> None:
        self.bodies: list[dict] = []
        self.attempts = 0
        self.fail = fail
        outer = self

        class H(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                outer.attempts += 1
                if outer.fail > 0:
                    outer.fail -= 1
                    self.send_response(500)
                    self.end_headers()
                    return
                outer.bodies.append(json.loads(body))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *_a: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def test_webhook_gets_json_and_slack_bodies(receiver: Receiver) -> None:
    d = Dispatcher([WebhookNotifier(receiver.url), WebhookNotifier(receiver.url, format="slack")], tick=0.05)
    engine = AlertEngine([latency_rule()], notify=d.submit)
    t = time.time()
    slow_queries(engine, t)
    engine.evaluate(t + 3)
    wait_until(lambda: len(receiver.bodies) == 2)
    d.close()
    plain = next(b for b in receiver.bodies if "alerts" in b)
    slack = next(b for b in receiver.bodies if "attachments" in b)
    [a] = plain["alerts"]
    assert plain["status"] == "firing"
    assert (a["rule"], a["state"], a["severity"], a["value"], a["threshold"]) == (
        "high_latency", "firing", "critical", 8.0, 5.0)
    assert a["labels"] == {"alertname": "high_latency", "severity": "critical", "service": "api", "team": "search"}
    assert a["fingerprint"] == engine.active()[0].fingerprint
    assert "[FIRING] high_latency (critical)" in slack["text"]
    assert slack["attachments"][0]["color"] == "#d00000"
    assert {"title": "team", "value": "search", "short": True} in slack["attachments"][0]["fields"]


def test_failing_webhook_is_retried_and_reported_while_evaluation_goes_on(caplog: pytest.LogCaptureFixture) -> None:
    flaky = Receiver(fail=2)  # 500 twice, then OK
    dead = f"http://127.0.0.1:{free_port()}/closed"  # nothing listens there
    try:
        d = Dispatcher([WebhookNotifier(flaky.url, max_retries=3), WebhookNotifier(dead, timeout=0.5, max_retries=2)],
                       backoff=0.05, tick=0.05)
        engine = AlertEngine([latency_rule()], notify=d.submit)
        t = time.time()
        slow_queries(engine, t)
        with caplog.at_level(logging.WARNING, logger="rag_otel.alerts"):
            started = time.monotonic()
            assert [e.state for e in engine.evaluate(t + 3)] == ["firing"]
            # delivery is off the evaluation path: evaluating goes on at once, and keeps working
            assert time.monotonic() - started < 0.2
            assert [e.state for e in engine.evaluate(t + 200)] == ["resolved"]
            wait_until(lambda: d.stats.get(f"webhook:{dead}", {}).get("failed") == 2)
            wait_until(lambda: len(flaky.bodies) == 2)
        d.close()
        assert flaky.attempts == 4 and [b["status"] for b in flaky.bodies] == ["firing", "resolved"]
        assert d.stats[f"webhook:{flaky.url}"] == {"sent": 2, "retried": 2, "failed": 0, "dropped": 0}
        assert d.stats[f"webhook:{dead}"] == {"sent": 0, "retried": 4, "failed": 2, "dropped": 0}
        assert any("giving up" in r.message and dead in r.message for r in caplog.records)
    finally:
        flaky.close()


# --- SMTP -----------------------------------------------------------------------------------
class Inbox:
    def __init__(self) -> None:
        self.messages: list[tuple[str, list[str], bytes]] = []

    async def handle_DATA(self, _server, _session, envelope):
        self.messages.append((envelope.mail_from, list(envelope.rcpt_tos), envelope.content))
        return "250 OK"


def test_email_over_smtp() -> None:
    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        alerting = Alerting.model_validate({"notifiers": [
            {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "from": "alerts@rag.test",
             "to": ["oncall@rag.test", "team@rag.test"]}]})
        [email] = build_notifiers(alerting)
        assert isinstance(email, EmailNotifier)
        d = Dispatcher([email], tick=0.05)
        engine = AlertEngine([latency_rule(message="average latency {value:.1f}s is over {threshold:g}s")],
                             notify=d.submit)
        t = time.time()
        slow_queries(engine, t)
        engine.evaluate(t + 3)
        wait_until(lambda: inbox.messages)
        d.close()
    finally:
        controller.stop()
    sender, rcpts, raw = inbox.messages[0]
    msg = message_from_bytes(raw)
    assert sender == "alerts@rag.test" and rcpts == ["oncall@rag.test", "team@rag.test"]
    assert msg["Subject"] == "[rag-otel] FIRING: high_latency (critical)"
    assert "average latency 8.0s is over 5s" in msg.get_payload()


def test_email_with_starttls_and_login(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that demands STARTTLS before AUTH: the password comes from the environment."""
    import ssl

    from aiosmtpd.smtp import AuthResult

    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key), "-out",
                    str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"], check=True, capture_output=True)
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(cert, key)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(_server, _session, _envelope, _mechanism, data):
        logins.append((data.login, data.password))
        return AuthResult(success=data.password == b"s3cret")

    inbox = Inbox()
    port = free_port()
    controller = Controller(inbox, hostname="127.0.0.1", port=port, tls_context=ctx, require_starttls=True,
                            authenticator=authenticator, auth_required=True)
    controller.start()
    try:
        monkeypatch.setenv("RAG_OTEL_TEST_SMTP_PW", "s3cret")
        alerting = Alerting.model_validate({"notifiers": [
            {"type": "email", "smtp_host": "127.0.0.1", "smtp_port": port, "from": "alerts@rag.test",
             "to": ["oncall@rag.test"], "starttls": True, "username": "rag", "password_env": "RAG_OTEL_TEST_SMTP_PW"}]})
        d = Dispatcher(build_notifiers(alerting), tick=0.05)
        d.submit([_firing_event()])
        wait_until(lambda: inbox.messages)
        d.close()
    finally:
        controller.stop()
    assert logins == [(b"rag", b"s3cret")]
    assert message_from_bytes(inbox.messages[0][2])["Subject"] == "[rag-otel] FIRING: high_latency (critical)"


def _firing_event() -> AlertEvent:
    engine = AlertEngine([latency_rule()])
    slow_queries(engine, 1000.0)
    return engine.evaluate(1003.0)[0]


# --- Alertmanager ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if ALERTMANAGER is None:
        pytest.fail("prometheus-alertmanager is not installed (apt-get install prometheus-alertmanager)")
    d: Path = tmp_path_factory.mktemp("alertmanager")
    (d / "am.yml").write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = free_port()
    proc = subprocess.Popen(
        [ALERTMANAGER, f"--config.file={d / 'am.yml'}", f"--storage.path={d / 'data'}",
         f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address="],
        stdout=subprocess.DEVNULL, stderr=(d / "am.log").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        def ready() -> bool:
            try:
                return httpx.get(f"{url}/-/ready", timeout=0.5).status_code == 200
            except httpx.HTTPError:
                return False
        wait_until(ready, timeout=20)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()


def test_alertmanager_receives_firing_then_resolved(alertmanager: str) -> None:
    am = AlertmanagerNotifier(alertmanager, external_url="http://127.0.0.1:8686")
    d = Dispatcher([am], tick=0.05)
    engine = AlertEngine([latency_rule()], notify=d.submit)
    t = time.time() - 300  # in the past, so the resolved alert's endsAt is already over for Alertmanager
    slow_queries(engine, t - 10)
    engine.evaluate(t)

    def ours() -> list[dict]:
        alerts = httpx.get(f"{alertmanager}/api/v2/alerts", timeout=2).json()
        return [a for a in alerts if a["labels"].get("alertname") == "high_latency"]

    [a] = wait_until(ours)
    assert a["status"]["state"] == "active"
    assert a["labels"] == {"alertname": "high_latency", "severity": "critical", "service": "api", "team": "search"}
    assert a["annotations"]["value"] == "8" and a["annotations"]["threshold"] == "5"
    assert a["generatorURL"].startswith("http://127.0.0.1:8686/api/alerts?fingerprint=")
    assert [e.state for e in engine.evaluate(t + 120)] == ["resolved"]  # the slow queries left the 1m window
    wait_until(lambda: not ours())  # Alertmanager lists only unresolved alerts
    d.close()
    assert d.stats[am.name]["sent"] == 2 and d.stats[am.name]["failed"] == 0


def test_alertmanager_keepalive_resends_firing_alerts() -> None:
    """Firing alerts are re-posted every resend interval (as Prometheus does), with endsAt ahead."""
    am = AlertmanagerNotifier("http://127.0.0.1:1", resend_interval=60)
    engine = AlertEngine([latency_rule()])
    slow_queries(engine, 1000.0)
    [e] = engine.evaluate(1003.0)
    am._firing[e.fingerprint] = e
    am._last_post = 2000.0
    assert am.due(2059.0) == [] and am.due(2060.0) == [e]
    p = am.payload(e, 2060.0)
    assert p["endsAt"] == "1970-01-01T00:38:20Z" and p["startsAt"] == "1970-01-01T00:16:43Z"
