"""The single-node topology, run for real without Docker: the committed configs drive a real
``rag-otel serve`` subprocess, a real Prometheus and a real Alertmanager on loopback.

The test copies of the committed files change only what a loopback run must change: addresses
(compose hostnames -> 127.0.0.1 and free ports), intervals (1 s instead of 15 s) and the
webhook receivers (-> a local HTTP server that records what it is sent). The Collector and
Jaeger have no binary here: an OTLP sink on the Collector's second-receiver address stands in
for them, and their Prometheus jobs are left out.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

from rag_otel import semconv
from tests.integration.test_processor_e2e import send_rag_traces
from tests.support.otlp_io import free_port
from tests.support.otlp_sink import OtlpSink

ROOT = Path(__file__).parents[2]
DASHBOARDS = sorted((ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"))
# Series that exist only after an event (a refusal, a retry, a drop, a firing alert): a healthy
# run may have none, so their names are checked against semconv instead of against Prometheus.
EVENT_ONLY = {"rag_processor_refused_total", "rag_processor_rejected_total", "rag_processor_export_retried_total",
              "rag_processor_export_dropped_total", "rag_processor_alerts_firing"}
# Series served only under OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental (this stack runs the default):
# a board reads them as the alternative to the default name, so they too are checked against semconv.
OPT_IN_ONLY = {"rag_processor_input_tokens_total", "rag_processor_output_tokens_total"}
# Names that come through the Collector (app system metrics, span metrics) or Prometheus itself.
NOT_FROM_PROCESSOR = re.compile(r"^(up|system_\w+|rag_system_health_score\w*|traces_span_metrics_\w+)$")


def wait_for(what: str, fn: Callable[[], Any], timeout: float = 20.0, every: float = 0.2) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = fn()
        except httpx.HTTPError:
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out waiting for {what}")
        time.sleep(every)


class Webhooks:
    """A real HTTP server that records every JSON POST by path (the Alertmanager and processor webhooks)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, dict[str, Any]]] = []
        hooks = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hooks.received.append((self.path, json.loads(body)))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def bodies(self, path: str) -> list[dict[str, Any]]:
        return [b for p, b in list(self.received) if p == path]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def start(args: list[str], ready_url: str, name: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for(f"{name} to become ready", lambda: proc.poll() is None and httpx.get(ready_url, timeout=1).is_success)
    except BaseException:
        stop(proc)
        raise
    return proc


def stop(proc: subprocess.Popen[Any]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def executable(*names: str) -> str:
    for n in names:
        if exe := shutil.which(n):
            return exe
    pytest.fail(f"{names[0]} is not installed (apt-get install prometheus prometheus-alertmanager)")


class Stack:
    """Where the running parts answer."""

    def __init__(self, sink: OtlpSink, hooks: Webhooks) -> None:
        self.sink, self.hooks = sink, hooks
        self.processor_http = self.processor_grpc = self.prometheus = self.alertmanager = ""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("deploy")
    sink = OtlpSink(http=False).start()  # the Collector's otlp/processed receiver
    hooks = Webhooks()
    st = Stack(sink, hooks)
    procs: list[subprocess.Popen[Any]] = []
    try:
        # Alertmanager: committed routes, webhooks to the local recorder, 1 s grouping
        am = yaml.safe_load((ROOT / "deploy/alertmanager/alertmanager.yml").read_text())
        am["route"].update(group_wait="1s", group_interval="1s")
        for route in am["route"]["routes"]:
            route.update({k: "1s" for k in ("group_wait", "group_interval") if k in route})
        for r in am["receivers"]:
            for w in r["webhook_configs"]:
                w["url"] = f"{hooks.url}/alertmanager/{r['name']}"
        (tmp / "alertmanager.yml").write_text(yaml.safe_dump(am))
        am_port = free_port()
        st.alertmanager = f"http://127.0.0.1:{am_port}"
        procs.append(start([executable("prometheus-alertmanager", "alertmanager"),
                            f"--config.file={tmp / 'alertmanager.yml'}", f"--storage.path={tmp / 'am'}",
                            f"--web.listen-address=127.0.0.1:{am_port}", "--cluster.listen-address="],
                           f"{st.alertmanager}/-/ready", "alertmanager"))

        # the processor: committed config, loopback addresses, export to the sink, quick evaluation
        cfg = yaml.safe_load((ROOT / "processors/rag-otel.yaml").read_text())
        mo = cfg["model_observation"]
        p = mo["processor"]
        p.update(otlp_grpc="127.0.0.1:0", otlp_http="127.0.0.1:0", http="127.0.0.1:0", data_dir=str(tmp / "data"),
                 trace_wait=0.2, shutdown_grace=5)
        # single node: one processor on its own DuckDB file, as the config's comment says (no PostgreSQL);
        # the fleet store with these files is tested in test_fleet_store.py
        assert p.pop("store").startswith("ducklake:postgres:") and p.pop("store_data_path")
        [export] = p["exports"]
        assert export["url"] == "grpc://collector:14317"
        export["url"] = f"grpc://127.0.0.1:{sink.grpc_port}"
        mo["alerting"]["evaluation_interval"] = 1
        urls = {"alertmanager": st.alertmanager, "webhook": f"{hooks.url}/processor"}
        for n in mo["alerting"]["notifiers"]:
            if n["type"] in urls:
                n["url"] = urls[n["type"]]
        (tmp / "rag-otel.yaml").write_text(yaml.safe_dump(cfg))
        serve = subprocess.Popen([sys.executable, "-m", "rag_otel.cli", "serve", "--config", str(tmp / "rag-otel.yaml"),
                                  "--metrics-interval", "1"],
                                 stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
                                 env={**os.environ, "PYTHONUNBUFFERED": "1"})
        procs.append(serve)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and serve.poll() is None:
            if m := re.search(r"OTLP gRPC (\S+), OTLP HTTP \S+, HTTP http://(\S+)", serve.stderr.readline()):
                st.processor_grpc, st.processor_http = m.group(1).rstrip(","), m.group(2)
                break
        assert st.processor_http, "rag-otel serve did not start"
        threading.Thread(target=serve.stderr.read, daemon=True).start()  # keep its pipe drained

        # Prometheus: committed config and rule file; processor job on loopback; 1 s intervals
        prom = yaml.safe_load((ROOT / "deploy/prometheus/prometheus.yml").read_text())
        prom["global"].update(scrape_interval="1s", evaluation_interval="1s")
        jobs = {j["job_name"]: j for j in prom["scrape_configs"]}
        processor_job = jobs["rag-otel-processor"]
        assert processor_job["dns_sd_configs"][0]["port"] == 8686
        del processor_job["dns_sd_configs"]
        processor_job["static_configs"] = [{"targets": [st.processor_http]}]
        prom["scrape_configs"] = [processor_job]
        prom["alerting"]["alertmanagers"][0]["static_configs"] = [{"targets": [f"127.0.0.1:{am_port}"]}]
        rules = yaml.safe_load((ROOT / "deploy/prometheus/rules/rag-otel-rules.yml").read_text())
        for group in rules["groups"]:
            group["interval"] = "1s"
        (tmp / "rules").mkdir()
        (tmp / "rules" / "rag-otel-rules.yml").write_text(yaml.safe_dump(rules))
        assert prom["rule_files"] == ["rules/rag-otel-rules.yml"]
        (tmp / "prometheus.yml").write_text(yaml.safe_dump(prom))
        prom_port = free_port()
        st.prometheus = f"http://127.0.0.1:{prom_port}"
        procs.append(start([executable("prometheus"), f"--config.file={tmp / 'prometheus.yml'}",
                            f"--storage.tsdb.path={tmp / 'tsdb'}", f"--web.listen-address=127.0.0.1:{prom_port}"],
                           f"{st.prometheus}/-/ready", "prometheus"))
        yield st
    finally:
        for proc in reversed(procs):
            stop(proc)
        hooks.close()
        sink.stop()


def query(st: Stack, promql: str) -> list[dict[str, Any]]:
    r = httpx.get(f"{st.prometheus}/api/v1/query", params={"query": promql}, timeout=5).json()
    assert r["status"] == "success", (promql, r)
    return r["data"]["result"]


def value(st: Stack, promql: str) -> float | None:
    result = query(st, promql)
    return float(result[0]["value"][1]) if result else None


def test_rag_traces_flow_to_prometheus_and_an_alert_reaches_alertmanager(stack: Stack) -> None:
    exporter = lambda: OTLPSpanExporter(endpoint=stack.processor_grpc, insecure=True)  # noqa: E731
    # first one ok and one failed query, so both status series exist before the error burst
    # (rate() needs a series to grow, not to appear)
    send_rag_traces(exporter(), n=1)
    send_rag_traces(exporter(), n=1, fail=True)
    wait_for("both status series in Prometheus",
             lambda: len(query(stack, "rag_processor_queries_total")) >= 2 and
             value(stack, "sum(rag_processor_queries_total)") == 2)
    send_rag_traces(exporter(), n=3, fail=True)

    # derived series, scraped from the processor's /metrics by the committed job
    wait_for("5 queries in Prometheus", lambda: value(stack, "sum(rag_processor_queries_total)") == 5)
    assert value(stack, 'sum(rag_processor_queries_total{status="error"})') == 4
    assert value(stack, 'sum(rag_processor_quality_score_count{axis="overall"})') == 5
    assert value(stack, "sum(rag_processor_cost_USD_total)") > 0
    assert value(stack, 'up{job="rag-otel-processor"}') == 1

    # the committed high_error_rate rule fires in Prometheus ...
    def prometheus_alert() -> dict[str, Any] | None:
        alerts = httpx.get(f"{stack.prometheus}/api/v1/alerts").json()["data"]["alerts"]
        return next((a for a in alerts if a["labels"]["alertname"] == "high_error_rate"
                     and a["state"] == "firing"), None)

    alert = wait_for("high_error_rate firing in Prometheus", prometheus_alert)
    assert alert["labels"] == {"alertname": "high_error_rate", "severity": "critical"}
    # ... Prometheus delivers it to Alertmanager (its own counter says so) ...
    sent = wait_for("Prometheus to notify Alertmanager", lambda: sum(
        float(v) for v in re.findall(r"^prometheus_notifications_sent_total\{[^}]*\} (\S+)$",
                                     httpx.get(f"{stack.prometheus}/metrics").text, re.M)))
    assert sent >= 1
    # ... where it is one alert with the processor's own (same labels: merged, not notified twice) ...
    in_am = wait_for("the alert in Alertmanager", lambda: [
        a for a in httpx.get(f"{stack.alertmanager}/api/v2/alerts").json()
        if a["labels"]["alertname"] == "high_error_rate"])
    assert len(in_am) == 1 and in_am[0]["labels"] == {"alertname": "high_error_rate", "severity": "critical"}
    assert in_am[0]["status"]["state"] == "active"
    wait_for("the processor's alertmanager notification", lambda: re.search(
        r'^rag_processor_alerts_notifications_total\{[^}]*notifier="alertmanager:[^"]*"[^}]*outcome="sent"',
        httpx.get(f"http://{stack.processor_http}/metrics").text, re.M))
    # ... and the committed routing tree sends a critical alert to the on-call receiver, once
    hooks = stack.hooks
    [note, *_] = wait_for("the on-call webhook", lambda: hooks.bodies("/alertmanager/oncall-webhook"))
    assert note["status"] == "firing" and note["receiver"] == "oncall-webhook"
    assert [a["labels"]["alertname"] for a in note["alerts"]] == ["high_error_rate"]
    assert not hooks.bodies("/alertmanager/team-webhook")

    # the processor evaluated the same rule on the same traffic and notified its webhook
    firing = wait_for("the processor's webhook", lambda: [
        a for b in hooks.bodies("/processor") for a in b["alerts"]
        if a["rule"] == "high_error_rate" and a["state"] == "firing"])
    assert firing[0]["severity"] == "critical"

    # and the enriched traces went out to the Collector's second receiver (here: the sink)
    roots = stack.sink.wait_for_spans("rag.query", count=5)
    assert {r.attributes["rag.quality.status"] for r in roots} == {"scored"}


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_queries_run_on_real_prometheus_over_real_series(stack: Stack, path: Path) -> None:
    """Every panel query is valid PromQL for Prometheus, and names only series the stack produces."""
    send_rag_traces(OTLPSpanExporter(endpoint=stack.processor_grpc, insecure=True), n=1)
    wait_for("series in Prometheus", lambda: query(stack, "rag_processor_queries_total"))
    names = set(wait_for("metric names", lambda: httpx.get(
        f"{stack.prometheus}/api/v1/label/__name__/values").json()["data"]))
    from_semconv = {n.replace(".", "_") + suffix for n in vars(semconv).values()
                    if isinstance(n, str) and n.startswith("rag.processor.") for suffix in ("", "_total")}
    for panel in json.loads(path.read_text())["panels"]:
        for t in panel["targets"]:
            expr = t["expr"].replace("$service", ".*")
            query(stack, expr)  # status success, or the assert inside names the query
            for name in re.findall(r"\b(rag_processor_\w+)", expr):
                base = re.sub(r"_(bucket|sum|count)$", "", name)
                if name in EVENT_ONLY or name in OPT_IN_ONLY:
                    assert name in from_semconv, f"{path.name}: {name} is not a processor metric"
                else:
                    assert name in names or f"{base}_bucket" in names, f"{path.name}: {name} never scraped"
            for name in re.findall(r'__name__=~"(\w+)', expr):
                assert NOT_FROM_PROCESSOR.match(name), name
