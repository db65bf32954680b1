"""Zero code: an unmodified app (it never imports rag_otel) run under `rag-otel instrument` and
under `opentelemetry-instrument`, served by a real uvicorn and queried over HTTP; its spans come
out of the console exporter on stdout."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import httpx
import pytest

BIN = Path(sys.executable).parent
APP = textwrap.dedent('''
    import faiss
    import numpy as np
    from fastapi import FastAPI

    app = FastAPI()
    index = faiss.IndexFlatL2(4)
    index.add(np.eye(4, dtype="float32"))

    @app.get("/search")
    def search(q: int) -> dict:
        _, ids = index.search(np.eye(4, dtype="float32")[q : q + 1], 2)
        return {"ids": ids[0].tolist()}
''')
SCRIPT = textwrap.dedent('''
    from opentelemetry import trace
    with trace.get_tracer("app").start_as_current_span("script-work"):
        print("script ran", flush=True)
''')


def console_spans(stdout: str) -> list[dict]:
    """The JSON objects ConsoleSpanExporter printed (anything else on stdout is skipped)."""
    decoder, out, i = json.JSONDecoder(), [], 0
    while (start := stdout.find("{", i)) != -1:
        try:
            obj, i = decoder.raw_decode(stdout, start)
        except json.JSONDecodeError:
            i = start + 1
            continue
        if isinstance(obj, dict) and "context" in obj and "name" in obj:
            out.append(obj)
    return out


def env(**extra: str) -> dict[str, str]:
    e = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RAG_OTEL_"))}
    e.update(OTEL_TRACES_EXPORTER="console", OTEL_METRICS_EXPORTER="none", OTEL_LOGS_EXPORTER="none",
             # the app uses neither: skipping them keeps the start-up (their imports) out of the test time
             OTEL_PYTHON_DISABLED_INSTRUMENTATIONS="openai,chromadb,langchain,llama_index",
             OTEL_SERVICE_NAME="zero-code-app", PATH=f"{BIN}{os.pathsep}{e.get('PATH', '')}", **extra)
    return e


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("launcher", [["rag-otel", "instrument"], ["opentelemetry-instrument"]])
def test_unmodified_fastapi_app_is_fully_instrumented(tmp_path: Path, launcher: list[str]) -> None:
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    cmd = [str(BIN / launcher[0]), *launcher[1:], str(BIN / "python"), "-m", "uvicorn", "app:app",
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env=env(OTEL_BSP_SCHEDULE_DELAY="100"),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                r = httpx.get(f"http://127.0.0.1:{port}/search", params={"q": 1}, timeout=2)
                break
            except httpx.TransportError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("app did not start") from None
                time.sleep(0.1)
        assert r.status_code == 200 and r.json() == {"ids": [1, 0]}
    finally:
        proc.terminate()  # uvicorn shuts down gracefully: the SDK flushes at exit
        stdout, stderr = proc.communicate(timeout=30)
    spans = console_spans(stdout)
    server = [s for s in spans if s["kind"] == "SpanKind.SERVER"]
    assert [s["name"] for s in server] == ["GET /search"], stderr
    retrieval = [s for s in spans if s["name"].startswith("retrieval")]
    assert len(retrieval) == 1 and retrieval[0]["kind"] == "SpanKind.CLIENT"
    assert retrieval[0]["context"]["trace_id"] == server[0]["context"]["trace_id"]
    assert json.loads(retrieval[0]["attributes"]["gen_ai.retrieval.documents"])[0]["id"] == "1"
    resource = server[0]["resource"]["attributes"]
    assert resource["service.name"] == "zero-code-app"
    assert resource["telemetry.distro.name"] == "rag-otel"


def test_broken_config_is_reported_and_the_app_still_runs_instrumented(tmp_path: Path) -> None:
    (tmp_path / "script.py").write_text(SCRIPT)
    (tmp_path / "rag-otel.yaml").write_text("model_observation:\n  telemetry: {servce_name: typo}\n")
    out = subprocess.run(
        [str(BIN / "rag-otel"), "instrument", "--config", "rag-otel.yaml", str(BIN / "python"), "script.py"],
        cwd=tmp_path, env=env(), capture_output=True, text=True, timeout=60,
    )
    assert out.returncode == 0 and "script ran" in out.stdout
    assert "telemetry.servce_name" in out.stderr and "unknown key" in out.stderr
    (span,) = [s for s in console_spans(out.stdout) if s["name"] == "script-work"]
    assert span["resource"]["attributes"]["service.name"] == "zero-code-app"  # defaults + env still apply


def test_instrument_command_reports_a_missing_program(tmp_path: Path) -> None:
    out = subprocess.run([str(BIN / "rag-otel"), "instrument", "no-such-program-xyz"], cwd=tmp_path, env=env(),
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 127 and "command not found: no-such-program-xyz" in out.stderr
