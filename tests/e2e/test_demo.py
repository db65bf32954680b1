"""`make demo` in a subprocess, with --queries set: it ends by itself and shows what the README promises.

Runs the Makefile's demo recipe for real (`make -o .venv/.installed demo`): `-o` tells make the
environment is already installed, so this test does not reinstall the shared venv under the other
tests; the install step is proven by test_quickstart.py in a clean checkout.  While the demo runs,
the test talks to its dashboard, /metrics and demo app over real sockets; afterwards it reads the
report files and the demo's DuckDB store.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from rag_otel.demo.answerer import EXTRACTIVE_NOTE

ROOT = Path(__file__).resolve().parents[2]
QUERIES = 40


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(url: str, proc: subprocess.Popen, timeout: float) -> httpx.Response:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the demo exited before it served"
        try:
            r = httpx.get(url, timeout=2.0)
            if r.status_code == 200:
                return r
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    raise AssertionError(f"{url} did not answer within {timeout}s")


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Runs the demo once; records what was seen while it ran and how it ended."""
    data = tmp_path_factory.mktemp("demo-data")
    http, app = _free_port(), _free_port()
    args = (f"--queries {QUERIES} --rate 6 --embedding hashing --data-dir {data} "
            f"--http 127.0.0.1:{http} --app-port {app}")
    log = data / "demo.log"
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    with log.open("wb") as out:
        proc = subprocess.Popen(["make", "-s", "-o", ".venv/.installed", "demo", f"DEMO_ARGS={args}"], cwd=ROOT,
                                stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
        seen: dict = {}
        try:
            base = f"http://127.0.0.1:{http}"
            seen["dashboard"] = _wait_for(f"{base}/", proc, 60)
            _wait_for(f"http://127.0.0.1:{app}/health", proc, 60)
            seen["answer"] = httpx.post(f"http://127.0.0.1:{app}/ask", timeout=10,
                                        json={"question": "What does error HS-204 mean?"},
                                        headers={"x-user-id": "test-user", "x-session-id": "t-1"})
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "rag_processor_queries_total{" not in seen.get("metrics", ""):
                seen["metrics"] = httpx.get(f"{base}/metrics", timeout=5).text
                time.sleep(1.0)
            seen["snapshot"] = httpx.get(f"{base}/api/v1/snapshot", timeout=5).json()
            seen["rc"] = proc.wait(150)
        finally:
            if proc.poll() is None:  # only our own process group (make and the demo under it)
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(10)
    seen["output"] = log.read_text(errors="replace")
    seen["data"] = data
    return seen


def test_exits_zero_and_says_where_everything_is(demo_run: dict) -> None:
    out = demo_run["output"]
    assert demo_run["rc"] == 0, out[-3000:]
    for what in ("Dashboard", "REST API", "Metrics", "/metrics", "demo finished."):
        assert what in out
    assert "progress:" in out  # not a terminal: plain progress lines every few seconds


def test_dashboard_and_metrics_answer_while_it_runs(demo_run: dict) -> None:
    page = demo_run["dashboard"]
    assert page.headers["content-type"].startswith("text/html") and "<html" in page.text.lower()
    metrics = demo_run["metrics"]
    assert 'rag_processor_queries_total{' in metrics and 'service="rag-demo-app"' in metrics
    assert demo_run["snapshot"]["health"]["status"] == "ok"


def test_demo_app_answers_honestly_without_an_llm(demo_run: dict) -> None:
    r = demo_run["answer"]
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "rag-otel-extractive"
    # honest beside the answer, not inside it (the scorer judges the answer text against the sources)
    assert body["note"] == EXTRACTIVE_NOTE and "stand-in for a language model" in EXTRACTIVE_NOTE
    assert "extractive" not in body["answer"] and "HS-204" in body["answer"]
    assert "troubleshooting#3" in body["sources"]  # the passage about HS-204, cited
    assert len(body["trace_id"]) == 32


def test_an_alert_fired_and_resolved(demo_run: dict) -> None:
    out = demo_run["output"]
    assert "ALERT FIRING demo_slow_answers" in out
    assert "ALERT RESOLVED demo_slow_answers" in out
    import duckdb

    con = duckdb.connect(str(demo_run["data"] / "rag-otel.duckdb"), read_only=True)
    try:
        states = [s for (s,) in con.execute("SELECT state FROM alerts WHERE rule = 'demo_slow_answers' "
                                            "ORDER BY ts").fetchall()]
        queries, failed, users = con.execute("SELECT count(*), count(*) FILTER (WHERE status = 'error'), "
                                             "count(DISTINCT user_id) FROM queries").fetchone()
        feedback = con.execute("SELECT count(*) FROM feedback").fetchone()[0]
        accuracy = con.execute("SELECT median(q_accuracy) FROM queries WHERE q_status = 'scored'").fetchone()[0]
        scored_failures = con.execute("SELECT count(*) FROM queries WHERE status = 'error' "
                                      "AND q_status = 'scored'").fetchone()[0]
    finally:
        con.close()
    assert "firing" in states and states[-1] == "resolved"
    # every query sent by the traffic (plus the test's own) reached the store; some failed on purpose
    assert queries >= QUERIES and failed >= 1 and users >= 5 and feedback >= 1
    # the extractive answers quote the sources verbatim: the scorer finds them supported
    assert accuracy is not None and accuracy >= 0.9, accuracy
    # a failure before the answer leaves no answer to score (the demo once streamed its trace id as one)
    assert scored_failures == 0


def test_a_daily_report_is_written(demo_run: dict) -> None:
    reports = demo_run["data"] / "reports"
    html = list(reports.glob("daily-*.html"))
    js = list(reports.glob("daily-*.json"))
    assert html and js, list(reports.iterdir()) if reports.exists() else "no reports dir"
    assert f"daily report: {html[0]}" in demo_run["output"].replace("\n", "")
    report = json.loads(js[0].read_text())
    assert "demo_slow_answers" in json.dumps(report)


def test_serve_app_uses_an_openai_compatible_endpoint_and_exports_otlp(tmp_path: Path) -> None:
    """`rag-otel demo --serve-app` (what docker-compose runs) with OPENAI_BASE_URL set: the real openai
    SDK calls tests/support/fake_openai.py (a real local server standing in for a provider, none can
    run here), and the app exports its spans over OTLP/gRPC to a real in-test receiver."""
    from tests.support.fake_openai import ANSWER_PREFIX, FakeOpenAI
    from tests.support.otlp_sink import OtlpSink

    port = _free_port()
    with FakeOpenAI(chunks=4) as fake, OtlpSink(http=False) as sink:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RAG_OTEL_"))}
        env.update({"OPENAI_BASE_URL": fake.base_url, "OPENAI_API_KEY": "test", "OPENAI_MODEL": "gpt-4o-mini",
                    "OTEL_EXPORTER_OTLP_ENDPOINT": sink.grpc_endpoint, "OTEL_BSP_SCHEDULE_DELAY": "100"})
        proc = subprocess.Popen([str(ROOT / ".venv/bin/rag-otel"), "demo", "--serve-app", "--port", str(port),
                                 "--embedding", "hashing"], env=env, stdout=subprocess.DEVNULL,
                                stderr=(tmp_path / "app.log").open("wb"), start_new_session=True)
        try:
            _wait_for(f"http://127.0.0.1:{port}/health", proc, 60)
            headers = {"x-user-id": "user-zoe", "x-session-id": "s-zoe-1"}
            r = httpx.post(f"http://127.0.0.1:{port}/ask", json={"question": "How do refunds work?"},
                           headers=headers, timeout=10)
            s = httpx.post(f"http://127.0.0.1:{port}/ask", headers=headers, timeout=10,
                           json={"question": "How long until it arrives?", "stream": True,
                                 "history": ["How do refunds work?"]})
            spans = sink.wait_for_spans("rag.query", count=2, timeout=15)
            chats = sink.wait_for_spans("chat gpt-4o-mini", count=2, timeout=15)
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(15)
    assert r.status_code == 200 and r.json()["answer"] == f"{ANSWER_PREFIX} How do refunds work?"
    assert r.json()["model"] == "gpt-4o-mini"
    assert s.status_code == 200 and s.text == f"{ANSWER_PREFIX} How long until it arrives?"
    assert s.headers["x-trace-id"] in {sp.trace_id for sp in spans}
    by_trace = {sp.trace_id: sp for sp in spans}
    streamed = by_trace[s.headers["x-trace-id"]]
    assert streamed.attributes["user.id"] == "user-zoe" and streamed.attributes["session.id"] == "s-zoe-1"
    assert streamed.attributes["rag.content.capture"] == "scoring_only"
    assert {"streaming", "follow-up", "citations"} <= set(streamed.attributes["rag.features"])
    assert all(c.attributes["gen_ai.usage.output_tokens"] > 0 for c in chats)
    names = {sp.name for sp in sink.spans() if sp.trace_id == r.json()["trace_id"]}
    assert {"retrieval harbor-docs", "embeddings rag-otel-hashing", "chat gpt-4o-mini"} <= names


def test_a_second_run_on_the_same_data_dir_ends_cleanly_and_costs_show(demo_run: dict) -> None:
    """Again on the data dir the first run left (a store already there): no "checkpoint at close failed"
    traceback at exit (opening an existing store left a result unread, its transaction open, until close),
    and the extractive answerer's made-up demo price makes the cost views non-zero, said so at start."""
    data = demo_run["data"]
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_BASE_URL", "OPENAI_API_KEY")}
    run = subprocess.run([sys.executable, "-m", "rag_otel.cli", "demo", "--queries", "4", "--rate", "6",
                          "--embedding", "hashing", "--data-dir", str(data), "--http", f"127.0.0.1:{_free_port()}",
                          "--app-port", str(_free_port())], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=240, stdin=subprocess.DEVNULL)
    out = run.stdout + run.stderr
    assert run.returncode == 0, out[-3000:]
    assert "checkpoint at close failed" not in out and "Traceback" not in out
    assert "DEMO PRICE" in out
    import duckdb

    con = duckdb.connect(str(data / "rag-otel.duckdb"), read_only=True)
    try:
        cost = con.execute("SELECT sum(cost_usd) FROM queries WHERE model = 'rag-otel-extractive'").fetchone()[0]
    finally:
        con.close()
    assert cost and cost > 0
