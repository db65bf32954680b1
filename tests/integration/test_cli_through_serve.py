"""``rag-otel analytics`` and ``rag-otel report`` while ``rag-otel serve`` holds the store.

A real serve subprocess (with a bearer token) takes RAG traces from the real OTel SDK exporter; the
real CLI then runs as subprocesses. While serve runs they read through its HTTP API; once it is
stopped the same commands read the store, and must print the same thing.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import httpx
import pyarrow.parquet as pq
import pytest
import yaml
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

from rag_otel.store import Store
from tests.integration.test_processor_e2e import send_rag_traces
from tests.support.otlp_io import free_port
from tests.support.serve_process import ServeProcess

TOKEN_ENV = "RAG_OTEL_TEST_API_TOKEN"
TOKEN = "s3cret-for-the-cli-test"
NOW = datetime.now(timezone.utc)
WINDOW = ["--from", (NOW - timedelta(hours=1)).isoformat(), "--to", (NOW + timedelta(hours=1)).isoformat()]


@dataclass
class Running:
    serve: ServeProcess
    config: Path
    data: Path
    url: str


def rag_otel(*args: str, token: str | None = TOKEN, **env: str) -> subprocess.CompletedProcess[str]:
    """The real command, as a user runs it (the token in the variable the config names, unless None)."""
    e = {k: v for k, v in os.environ.items() if k not in (TOKEN_ENV, "RAG_OTEL_SERVER")}
    if token is not None:
        e[TOKEN_ENV] = token
    return subprocess.run([sys.executable, "-m", "rag_otel.cli", *args], capture_output=True, text=True,
                          timeout=180, env={**e, "COLUMNS": "200", **env})


def write_config(path: Path, data: Path, http_port: int) -> Path:
    path.write_text(yaml.safe_dump({"model_observation": {
        "processor": {"http": f"127.0.0.1:{http_port}", "data_dir": str(data), "trace_wait": 0.2,
                      "shutdown_grace": 5, "api_token_env": TOKEN_ENV},
        "reporting": {"out_dir": str(path.parent / "server-reports"),
                      "daily_report": {"enabled": False}, "weekly_report": {"enabled": False, "day": "monday"}},
    }}))
    return path


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("cli-serve")
    config = write_config(tmp / "rag-otel.yaml", tmp / "data", free_port())
    serve = ServeProcess(config, "--otlp-grpc", "127.0.0.1:0", "--otlp-http", "127.0.0.1:0",
                         env={TOKEN_ENV: TOKEN}).start()
    try:
        endpoint = f"http://{serve.otlp_http}/v1/traces"
        send_rag_traces(OTLPSpanExporter(endpoint=endpoint), n=3, user="alice")  # each call shuts its exporter
        send_rag_traces(OTLPSpanExporter(endpoint=endpoint), n=1, user="bob", fail=True)
        url = f"http://{serve.http}"
        deadline = time.monotonic() + 30
        while len(httpx.get(f"{url}/api/v1/queries", headers={"Authorization": f"Bearer {TOKEN}"}).json()) < 4:
            assert time.monotonic() < deadline, "the traces never reached the store"
            time.sleep(0.2)
        yield Running(serve, config, tmp / "data", url)
    finally:
        serve.stop()


def test_report_is_built_by_the_serve_and_written_where_asked(running: Running, tmp_path: Path) -> None:
    out = tmp_path / "out"
    day = NOW.date().isoformat()
    p = rag_otel("report", "daily", "--date", day, "--config", str(running.config), "--format", "json,markdown",
                 "--out", str(out))
    assert p.returncode == 0, p.stderr
    assert f"store is held by a running serve; reading through {running.url}" in p.stderr
    printed = p.stdout.split()
    assert sorted(Path(f).name for f in printed) == sorted(
        [f"daily-{day}.json", f"daily-{day}.md", *(f"daily-{day}-{c}.png" for c in ("performance", "quality",
                                                                                       "usage", "cost"))])
    assert all(Path(f).parent == out.resolve() and Path(f).stat().st_size > 0 for f in printed)
    assert json.loads((out / f"daily-{day}.json").read_text())["summary"]["queries"] == 4
    assert (out / f"daily-{day}-usage.png").read_bytes().startswith(b"\x89PNG")  # the Markdown's linked chart


def test_one_text_format_to_a_file_path(running: Running, tmp_path: Path) -> None:
    target = tmp_path / "today.md"
    p = rag_otel("report", "daily", "--date", NOW.date().isoformat(), "--config", str(running.config),
                 "--format", "markdown", "--out", str(target), "--server", running.url)
    assert p.returncode == 0, p.stderr
    assert target.read_text().startswith("# RAG daily report")
    assert (tmp_path / f"daily-{NOW.date().isoformat()}-cost.png").exists()


def test_report_files_are_served_by_recorded_name_only(running: Running, tmp_path: Path) -> None:
    """The download endpoint serves what a run recorded, nothing else on the server's disk."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    (running.data / "secret.txt").write_text("not a report")
    run = httpx.post(f"{running.url}/api/v1/reports/run", json={"kind": "daily", "formats": ["json"]}, headers=auth,
                     timeout=60).json()
    name = Path(run["files"][0]).name
    ok = httpx.get(f"{running.url}/api/v1/reports/{run['id']}/files/{name}", headers=auth)
    assert ok.status_code == 200 and ok.json()["summary"] == run["summary"]
    for bad in ("secret.txt", "..%2Fsecret.txt", "..%2F..%2Fdata%2Fsecret.txt", "%2Fetc%2Fpasswd"):
        r = httpx.get(f"{running.url}/api/v1/reports/{run['id']}/files/{bad}", headers=auth)
        assert r.status_code == 404 and r.json()["message"], (bad, r.text)  # the router's or the handler's 404
    assert "wrote no file named 'secret.txt'" in httpx.get(
        f"{running.url}/api/v1/reports/{run['id']}/files/secret.txt", headers=auth).json()["message"]
    assert httpx.get(f"{running.url}/api/v1/export/users", headers=auth).status_code == 422


def test_wrong_server_url_is_a_clear_error(running: Running) -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    p = rag_otel("analytics", "performance", "--config", str(running.config), "--server", dead)
    assert p.returncode == 1
    assert f"the server at {dead} is not answering" in p.stderr, p.stderr
    assert p.stdout == ""


def test_locked_store_and_no_server_names_both(running: Running, tmp_path: Path) -> None:
    """The config points at a port where nothing listens: the store is held, and nobody answers there."""
    port = free_port()
    config = write_config(tmp_path / "elsewhere.yaml", running.data, port)
    p = rag_otel("report", "daily", "--config", str(config), "--out", str(tmp_path / "o"))
    assert p.returncode == 1
    assert "is in use by another process" in p.stderr and f"the server at http://127.0.0.1:{port} is not answering" \
        in p.stderr, p.stderr
    assert not (tmp_path / "o").exists()


def test_a_serve_holding_another_store_is_not_used(running: Running, tmp_path: Path) -> None:
    """Another store held (here by this test process) and the config's address answered by a serve that
    holds a different one: its answers would be about other data, so the command refuses."""
    other = tmp_path / "other-data"
    with Store.open(other):
        config = write_config(tmp_path / "other.yaml", other, int(running.url.rsplit(":", 1)[1]))
        p = rag_otel("analytics", "performance", "--config", str(config))
    assert p.returncode == 1
    assert f"the server at {running.url} serves {running.data / 'rag-otel.duckdb'}, not {other / 'rag-otel.duckdb'}" \
        in p.stderr, p.stderr
    assert p.stdout == ""


def test_bearer_token_is_sent_and_required(running: Running) -> None:
    args = ("analytics", "performance", "--json", "--config", str(running.config), *WINDOW)
    assert json.loads(rag_otel(*args).stdout)["total"] == 4
    missing = rag_otel(*args, token=None)
    assert missing.returncode == 1
    assert f"the server at {running.url} wants a bearer token: ${TOKEN_ENV}" in missing.stderr, missing.stderr
    wrong = rag_otel(*args, token="not-it")
    assert wrong.returncode == 1 and "refused the bearer token" in wrong.stderr, wrong.stderr


# Last: it stops the module's serve to read the store directly.
def test_analytics_through_serve_print_what_the_store_prints_after_it_stops(running: Running,
                                                                           tmp_path: Path) -> None:
    cfg = ["--config", str(running.config)]
    commands = [
        ["analytics", "all", "--json", *WINDOW, *cfg],
        ["analytics", "performance", *WINDOW, *cfg],  # rich tables
        ["analytics", "user_behavior", "--user", "alice", "--json", *WINDOW, *cfg],
        ["analytics", "quality", "--service", "rag-app", *WINDOW, *cfg],
    ]
    through_serve = []
    for c in commands:
        p = rag_otel(*c)
        assert p.returncode == 0, p.stderr
        assert f"store is held by a running serve; reading through {running.url}" in p.stderr
        through_serve.append(p.stdout)
    export = rag_otel("analytics", "export", "--out", str(tmp_path / "served"), *cfg)
    assert export.returncode == 0, export.stderr

    assert running.serve.stop() == 0
    for c, expected in zip(commands, through_serve, strict=True):
        p = rag_otel(*c)
        assert p.returncode == 0, p.stderr
        assert "reading through" not in p.stderr
        assert p.stdout == expected, c
    local = rag_otel("analytics", "export", "--out", str(tmp_path / "local"), *cfg)
    assert local.returncode == 0, local.stderr
    assert [Path(f).name for f in export.stdout.split()] == [Path(f).name for f in local.stdout.split()]
    for name in (Path(f).name for f in local.stdout.split()):
        assert pq.read_table(tmp_path / "served" / name).equals(pq.read_table(tmp_path / "local" / name)), name

    everything = json.loads(through_serve[0])
    assert everything["performance"]["total"] == 4 and everything["performance"]["errors"] == 1
    alice = json.loads(through_serve[2])
    assert [u["user_id"] for u in alice["users"]] == ["alice"] and alice["daily"][0]["queries"] == 3  # --user sent
    assert "performance" in through_serve[1] and "quality" in through_serve[3]
