"""What a new user meets first on a real processor: `rag-otel serve` says where the dashboard is, /docs
is an offline API browser (Swagger UI from the installed package, no CDN), /favicon.ico exists, and
/health does not say ``ok`` while every export to the only downstream fails."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from rag_otel.config import Endpoint, ModelObservation
from rag_otel.processor.service import ProcessorService


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_serve_prints_where_the_dashboard_is(tmp_path: Path) -> None:
    http = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "rag_otel.cli", "serve", "--http", f"127.0.0.1:{http}", "--otlp-grpc",
         "127.0.0.1:0", "--otlp-http", "127.0.0.1:0", "--data-dir", str(tmp_path / "data")],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env={**os.environ, "RAG_OTEL_CONFIG": ""})
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and "dashboard" not in line:
            line = proc.stderr.readline() if proc.stderr else ""
            assert line or proc.poll() is None, "serve exited without saying where it listens"
        assert re.search(rf"dashboard http://127\.0\.0\.1:{http}/ ", line), line
        assert httpx.get(f"http://127.0.0.1:{http}/", timeout=5).status_code == 200  # and it is there
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(30)


def _service(tmp_path: Path, exports: list[Endpoint]) -> ProcessorService:
    cfg = ModelObservation()
    p = cfg.processor
    p.otlp_grpc = p.otlp_http = p.http = "127.0.0.1:0"
    p.data_dir = str(tmp_path / "data")
    p.shutdown_grace = 1.0
    p.exports = exports
    return ProcessorService(cfg, metrics_interval=0.2).start()


def test_docs_are_served_offline_and_the_favicon_exists(tmp_path: Path) -> None:
    svc = _service(tmp_path, [])
    try:
        with httpx.Client(base_url=f"http://{svc.http_address}", timeout=10) as c:
            docs = c.get("/docs")
            assert docs.status_code == 200 and "swagger-ui" in docs.text and "/openapi.json" in docs.text
            scripts = re.findall(r'src="([^"]+)"', docs.text) + re.findall(r'href="([^"]+\.css)"', docs.text)
            assert scripts and all(s.startswith("/") for s in scripts)  # nothing from a CDN
            for s in scripts:
                assert c.get(s).status_code == 200, s
            icon = c.get("/favicon.ico")
            assert icon.status_code == 200 and icon.headers["content-type"].startswith("image/")
    finally:
        svc.stop()


def test_health_is_degraded_while_every_export_fails(tmp_path: Path) -> None:
    dead = free_port()  # nothing listens here: every export is refused
    svc = _service(tmp_path, [Endpoint(url=f"http://127.0.0.1:{dead}", timeout=1.0)])
    try:
        with httpx.Client(base_url=f"http://{svc.http_address}", timeout=10) as c:
            deadline = time.monotonic() + 20
            health = c.get("/health").json()
            while health["status"] != "degraded" and time.monotonic() < deadline:
                time.sleep(0.2)  # derived metrics are exported every 0.2 s and fail
                health = c.get("/health").json()
            assert health["status"] == "degraded", health
            (export,) = health["export_status"]
            assert export["state"] == "failing" and export["failing_since"] and export["last_error"]
    finally:
        svc.stop()
