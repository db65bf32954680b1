"""The README's "Instrument an app in one call" example, extracted from README.md and run exactly as
written in a subprocess, into a real ``rag-otel serve`` with its default configuration: the query
record arrives scored on the first run (issue 10: it used to arrive ``no_content``).

The model is the OpenAI-compatible test server (tests/support/fake_openai.py), reached through the
openai SDK's own ``OPENAI_BASE_URL``; the endpoint and protocol through the standard OTEL variables."""

from __future__ import annotations

import contextlib
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import yaml

from tests.support.fake_openai import FakeOpenAI
from tests.support.otlp_io import free_port
from tests.support.serve_process import ServeProcess

README = Path(__file__).resolve().parents[2] / "README.md"


def readme_example() -> str:
    text = README.read_text()
    section = text[text.index("## Instrument an app in one call"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)


@contextlib.contextmanager
def readme_app_run(tmp_path: Path, **env_extra: str) -> Iterator[tuple[ServeProcess, subprocess.CompletedProcess]]:
    """The README example run once as written, into a serve with its default configuration (still running)."""
    app = tmp_path / "app.py"
    app.write_text(readme_example())
    config = tmp_path / "rag-otel.yaml"
    config.write_text(yaml.safe_dump({"model_observation": {"processor": {
        "http": f"127.0.0.1:{free_port()}", "data_dir": str(tmp_path / "data"), "trace_wait": 0.2}}}))
    with FakeOpenAI() as fake, ServeProcess(config, "--otlp-grpc", "127.0.0.1:0",
                                            "--otlp-http", "127.0.0.1:0") as serve:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "RAG_OTEL_"))}
        env.update(OPENAI_BASE_URL=fake.base_url, OPENAI_API_KEY="test",
                   OTEL_EXPORTER_OTLP_ENDPOINT=f"http://{serve.otlp_http}",
                   OTEL_EXPORTER_OTLP_PROTOCOL="http/protobuf", **env_extra)
        run = subprocess.run([sys.executable, str(app)], capture_output=True, text=True, timeout=120,
                             env=env, cwd=tmp_path)
        assert run.returncode == 0, run.stderr
        yield serve, run


def test_readme_example_gives_a_scored_query_on_its_first_run(tmp_path: Path) -> None:
    with readme_app_run(tmp_path) as (serve, run):
        assert run.stdout.strip() == "Deterministic answer to: How many days of paid leave do employees get?"
        deadline = time.monotonic() + 60
        rows: list[dict] = []
        while not rows:
            assert time.monotonic() < deadline, f"no query record: {''.join(serve.log)[-2000:]}"
            rows = httpx.get(f"http://{serve.http}/api/v1/queries").json()
            time.sleep(0.2)
    (row,) = rows
    assert row["q_status"] == "scored", row
    assert all(row.get(f"q_{axis}") is not None
               for axis in ("accuracy", "completeness", "relevance", "consistency")), row
    assert row["cost_usd"] > 0 and row["user_id"] == "u-42"
    assert row["query_text"] is None  # scored, then stripped: the store keeps no content under scoring_only


def test_with_capture_off_serve_says_queries_went_unscored_and_how_to_score(tmp_path: Path) -> None:
    # the user opted out
    with readme_app_run(tmp_path, OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT="false") as (serve, _run):
        deadline = time.monotonic() + 60
        while not httpx.get(f"http://{serve.http}/api/v1/queries").json():
            assert time.monotonic() < deadline, "no query record"
            time.sleep(0.2)
        serve.stop()  # every line of its log is in serve.log after stop
    log = "".join(serve.log)
    assert "1 query arrived without question/answer text, unscored so far" in log
    assert "content.capture: scoring_only" in log
