"""Run the test apps as users run them: unmodified, in a subprocess, under ``rag-otel instrument``,
exporting to a real ``rag-otel serve``, with their OpenAI client pointed at the local fake server.

One serve and one fake OpenAI server are shared by every app (module fixtures in test_apps.py);
each app runs under its own ``service.name``, so its records are read apart through serve's API.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import yaml

from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp_io import free_port
from tests.support.otlp_sink import OtlpSink
from tests.support.serve_process import ServeProcess

HERE = Path(__file__).parent
BIN = Path(sys.executable).parent
CORPUS = HERE / "corpus"


def corpus() -> dict[str, str]:
    """Document id (file stem) -> text, as every app reads it (the heading line dropped)."""
    return {p.stem: p.read_text().split("\n", 1)[1].strip() for p in sorted(CORPUS.glob("*.md"))}


@dataclass
class Stack:
    """The shared servers: the fake OpenAI API and ``rag-otel serve``."""

    fake: FakeOpenAI
    serve: ServeProcess
    capture: str = "scoring_only"
    downstream: OtlpSink | None = None  # serve's --export receiver, when the test reads what leaves
    extra_env: dict[str, str] = field(default_factory=dict)

    @property
    def api(self) -> str:
        return f"http://{self.serve.http}"

    def env(self, service: str, **extra: str) -> dict[str, str]:
        e = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RAG_OTEL_", "OPENAI_"))}
        e.update(
            # OPENAI_API_BASE: the name LlamaIndex's OpenAI classes read
            OPENAI_BASE_URL=self.fake.base_url, OPENAI_API_BASE=self.fake.base_url, OPENAI_API_KEY="sk-test",
            OTEL_SERVICE_NAME=service,
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{self.serve.otlp_http}", OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf",
            OTEL_BSP_SCHEDULE_DELAY="100", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
            OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=self.capture,
            PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", PYTHONPATH=str(HERE), CORPUS_DIR=str(CORPUS),
            ANONYMIZED_TELEMETRY="False",  # chromadb's own telemetry: no network here
            **self.extra_env, **extra,
        )
        return e

    def records(self, service: str, n: int, timeout: float = 30.0, settle: float = 1.0) -> list[dict[str, Any]]:
        """The query records of ``service`` once ``n`` arrived (then ``settle`` s more for extras), oldest first."""
        deadline = time.monotonic() + timeout
        rows: list[dict[str, Any]] = []
        while time.monotonic() < deadline:
            rows = httpx.get(f"{self.api}/api/v1/queries", params={"service": service, "limit": 100}).json()
            if len(rows) >= n:
                time.sleep(settle)
                rows = httpx.get(f"{self.api}/api/v1/queries", params={"service": service, "limit": 100}).json()
                break
            time.sleep(0.2)
        return sorted(rows, key=lambda r: r["ts"])

    def analytics(self, name: str, service: str) -> dict[str, Any]:
        r = httpx.get(f"{self.api}/api/v1/analytics/{name}", params={"service": service, "period": "1h"})
        r.raise_for_status()
        return r.json()

    def chat_requests(self, since: int = 0) -> list[dict[str, Any]]:
        return [r for r in list(self.fake.requests)[since:] if r["path"].endswith("/chat/completions")]


@contextmanager
def serve_stack(tmp: Path, *, capture: str, trace_wait: float, fake: FakeOpenAI) -> Iterator[Stack]:
    """A real ``rag-otel serve`` (content ``capture`` as the processor's own policy) exporting to an OTLP
    sink, beside the already-entered fake OpenAI server; stopped at the end."""
    config = tmp / "rag-otel.yaml"
    config.write_text(yaml.safe_dump({"model_observation": {
        "content": {"capture": capture},
        "processor": {"http": f"127.0.0.1:{free_port()}", "data_dir": str(tmp / "data"), "trace_wait": trace_wait,
                      "shutdown_grace": 5},
        "reporting": {"daily_report": {"enabled": False}, "weekly_report": {"enabled": False, "day": "monday"}},
    }}))
    with OtlpSink(grpc=False) as sink:
        serve = ServeProcess(config, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                             "--export", sink.http_endpoint).start()
        try:
            yield Stack(fake, serve, downstream=sink)
        finally:
            serve.stop()


@contextmanager
def web_app(stack: Stack, module: str, service: str, **env: str) -> Iterator[str]:
    """``rag-otel instrument uvicorn module:app`` on a free port; yields its base URL; stops it like an operator."""
    port = free_port()
    cmd = [str(BIN / "rag-otel"), "instrument", str(BIN / "python"), "-m", "uvicorn", f"{module}:app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=HERE, env=stack.env(service, **env), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 150  # LlamaIndex + Chroma import slowly on a busy machine
        while True:
            try:
                httpx.get(f"{url}/docs", timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    proc.kill()
                    raise AssertionError(f"{module} did not start:\n{proc.communicate()[0]}") from None
                time.sleep(0.1)
        yield url
    finally:
        proc.terminate()  # uvicorn shuts down gracefully: the SDK flushes its spans at exit
        try:
            out = proc.communicate(timeout=30)[0]
        except subprocess.TimeoutExpired:
            proc.kill()
            out = proc.communicate()[0]
        if "Traceback" in (out or ""):
            print(out)  # shown by pytest on failure


def run_script(stack: Stack, script: str, service: str, *args: str, **env: str) -> list[dict[str, Any]]:
    """``rag-otel instrument python script args``; the JSON lines it printed."""
    out = subprocess.run([str(BIN / "rag-otel"), "instrument", str(BIN / "python"), script, *args], cwd=HERE,
                         env=stack.env(service, **env), capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
